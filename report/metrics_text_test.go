package report

import (
	"strings"
	"testing"
	"time"

	"github.com/imdsmend/imdsmend/internal/types"
)

// TestMetricsText pins the textfile byte for byte: the exposition format written by hand
// must stay what the Prometheus client library wrote (families and series sorted, %g
// values, escaped label values and help).
func TestMetricsText(t *testing.T) {
	odd := sampleReport()
	odd.IMDS = &types.IMDS{Reachable: true, Class: "a\"b\\c\nd", LatencyMS: 1.5}
	odd.Findings = append(odd.Findings,
		Finding{Rule: "proxy_leak", Severity: "warning"},
		Finding{Rule: "imds_unreachable", Severity: "critical"},
		Finding{Rule: "alpha", Severity: "info"})
	tests := []struct {
		name string
		rep  *Report
		want string
	}{
		{"healthy check", &Report{Command: "check", Healthy: true, DurationMS: 3}, `
# HELP imdsmend_healthy 1 when the last run left no open finding and no undecided rule.
# TYPE imdsmend_healthy gauge
imdsmend_healthy{command="check"} 1
# HELP imdsmend_last_run_duration_seconds How long the last run took.
# TYPE imdsmend_last_run_duration_seconds gauge
imdsmend_last_run_duration_seconds{command="check"} 0.003
# HELP imdsmend_last_run_timestamp_seconds When the last run ended, in seconds since the epoch.
# TYPE imdsmend_last_run_timestamp_seconds gauge
imdsmend_last_run_timestamp_seconds{command="check"} 1.7957804045e+09
# HELP imdsmend_rules_undecided Rules the last run could not decide (facts missing).
# TYPE imdsmend_rules_undecided gauge
imdsmend_rules_undecided 0
`},
		{"counts and escaping", odd, `
# HELP imdsmend_actions Actions of the last run, by kind and status.
# TYPE imdsmend_actions gauge
imdsmend_actions{kind="firewall_delete",status="applied"} 1
imdsmend_actions{kind="no_proxy",status="failed"} 1
# HELP imdsmend_findings_open Findings open after the last run, by rule and severity.
# TYPE imdsmend_findings_open gauge
imdsmend_findings_open{rule="alpha",severity="info"} 1
imdsmend_findings_open{rule="imds_unreachable",severity="critical"} 2
imdsmend_findings_open{rule="proxy_leak",severity="warning"} 1
# HELP imdsmend_healthy 1 when the last run left no open finding and no undecided rule.
# TYPE imdsmend_healthy gauge
imdsmend_healthy{command="apply"} 0
# HELP imdsmend_imds_class 1 for the class of the IMDS probe's outcome (ok, timeout, http_403, …).
# TYPE imdsmend_imds_class gauge
imdsmend_imds_class{class="a\"b\\c\nd"} 1
# HELP imdsmend_imds_latency_seconds Wall time of the IMDS probe, retries included.
# TYPE imdsmend_imds_latency_seconds gauge
imdsmend_imds_latency_seconds 0.0015
# HELP imdsmend_imds_up 1 when the IMDS probe got metadata.
# TYPE imdsmend_imds_up gauge
imdsmend_imds_up 1
# HELP imdsmend_last_run_duration_seconds How long the last run took.
# TYPE imdsmend_last_run_duration_seconds gauge
imdsmend_last_run_duration_seconds{command="apply"} 0.01234
# HELP imdsmend_last_run_timestamp_seconds When the last run ended, in seconds since the epoch.
# TYPE imdsmend_last_run_timestamp_seconds gauge
imdsmend_last_run_timestamp_seconds{command="apply"} 1.7957804045e+09
# HELP imdsmend_rules_undecided Rules the last run could not decide (facts missing).
# TYPE imdsmend_rules_undecided gauge
imdsmend_rules_undecided 1
`},
	}
	end := time.Unix(1795780404, 500_000_000)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Metrics(tt.rep, end)
			// want opens with a line break to keep the raw strings readable.
			if want := strings.TrimPrefix(tt.want, "\n"); string(got) != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
