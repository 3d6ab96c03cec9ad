package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/internal/paths"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parseMetrics reads a textfile back as node_exporter would, flattened to
// "name{label=value,…}" → value.
func parseMetrics(t *testing.T, data []byte) map[string]float64 {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse metrics: %v\n%s", err, data)
	}
	out := map[string]float64{}
	for name, mf := range families {
		if mf.GetType() != dto.MetricType_GAUGE {
			t.Errorf("%s is %v, want a gauge", name, mf.GetType())
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s has no HELP", name)
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			out[name+"{"+strings.Join(labels, ",")+"}"] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestWriteMetricsParsesBack(t *testing.T) {
	rep := sampleReport()
	rep.IMDS.LatencyMS = 2500
	rep.Findings = append(rep.Findings, Finding{Rule: "proxy_leak", Severity: "warning"})
	path := filepath.Join(t.TempDir(), "imdsmend.prom")
	end := time.Unix(1795780404, 500_000_000)
	if err := WriteMetrics(paths.New("/"), path, rep, end); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"imdsmend_healthy{command=apply}":                                 0,
		"imdsmend_findings_open{rule=imds_unreachable,severity=critical}": 1,
		"imdsmend_findings_open{rule=proxy_leak,severity=warning}":        1,
		"imdsmend_rules_undecided{}":                                      1,
		"imdsmend_actions{kind=firewall_delete,status=applied}":           1,
		"imdsmend_actions{kind=no_proxy,status=failed}":                   1,
		"imdsmend_imds_up{}":                                              0,
		"imdsmend_imds_latency_seconds{}":                                 2.5,
		"imdsmend_imds_class{class=timeout}":                              1,
		"imdsmend_last_run_timestamp_seconds{command=apply}":              1795780404.5,
		"imdsmend_last_run_duration_seconds{command=apply}":               0.01234,
	}
	if diff := cmp.Diff(want, parseMetrics(t, data)); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644 (node_exporter reads it)", st.Mode().Perm())
	}
}

func TestMetricsWithoutIMDSFacts(t *testing.T) {
	got := parseMetrics(t, Metrics(&Report{Command: "check", Healthy: true}, time.Unix(0, 0)))
	for k := range got {
		if strings.HasPrefix(k, "imdsmend_imds_") {
			t.Errorf("IMDS metric %s written although the probe did not run", k)
		}
	}
	if got["imdsmend_healthy{command=check}"] != 1 {
		t.Errorf("healthy missing: %v", got)
	}
}

func TestWriteMetricsUnwritable(t *testing.T) {
	dir := t.TempDir()
	// A path under a regular file can never be created, even by root.
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := WriteMetrics(paths.New("/"), filepath.Join(blocker, "imdsmend.prom"), sampleReport(), time.Now())
	if err == nil || !strings.Contains(err.Error(), "--metrics-file") {
		t.Errorf("want an error naming --metrics-file, got %v", err)
	}
}

func BenchmarkMetrics(b *testing.B) {
	rep := sampleReport()
	end := time.Now()
	for b.Loop() {
		Metrics(rep, end)
	}
}
