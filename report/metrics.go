package report

import (
	"bytes"
	"fmt"
	"time"

	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Metric names of the textfile (docs/operating.md shows an example).
const (
	MetricHealthy         = "imdsmend_healthy"
	MetricFindingsOpen    = "imdsmend_findings_open"
	MetricRulesUndecided  = "imdsmend_rules_undecided"
	MetricActions         = "imdsmend_actions"
	MetricIMDSUp          = "imdsmend_imds_up"
	MetricIMDSLatency     = "imdsmend_imds_latency_seconds"
	MetricIMDSClass       = "imdsmend_imds_class"
	MetricLastRunTime     = "imdsmend_last_run_timestamp_seconds"
	MetricLastRunDuration = "imdsmend_last_run_duration_seconds"
)

// Metrics renders a report in the Prometheus text format. end is when the run finished.
// The registry is private: the file holds imdsmend's metrics and nothing of the Go runtime.
func Metrics(rep *Report, end time.Time) ([]byte, error) {
	reg := prometheus.NewRegistry()
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		reg.MustRegister(g)
		return g
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}

	gauge(MetricHealthy, "1 when the last run left no open finding and no undecided rule.", "command").
		WithLabelValues(rep.Command).Set(b2f(rep.Healthy))
	findings := gauge(MetricFindingsOpen, "Findings open after the last run, by rule and severity.", "rule", "severity")
	for _, f := range rep.Findings {
		findings.WithLabelValues(f.Rule, f.Severity).Inc()
	}
	gauge(MetricRulesUndecided, "Rules the last run could not decide (facts missing).").
		WithLabelValues().Set(float64(len(rep.Unknown)))
	actions := gauge(MetricActions, "Actions of the last run, by kind and status.", "kind", "status")
	for _, a := range rep.Actions {
		actions.WithLabelValues(a.Kind, a.Status).Inc()
	}
	if rep.IMDS != nil {
		gauge(MetricIMDSUp, "1 when the IMDS probe got metadata.").WithLabelValues().Set(b2f(rep.IMDS.Reachable))
		gauge(MetricIMDSLatency, "Wall time of the IMDS probe, retries included.").
			WithLabelValues().Set(rep.IMDS.LatencyMS / 1000)
		gauge(MetricIMDSClass, "1 for the class of the IMDS probe's outcome (ok, timeout, http_403, …).", "class").
			WithLabelValues(rep.IMDS.Class).Set(1)
	}
	gauge(MetricLastRunTime, "When the last run ended, in seconds since the epoch.", "command").
		WithLabelValues(rep.Command).Set(float64(end.UnixNano()) / 1e9)
	gauge(MetricLastRunDuration, "How long the last run took.", "command").
		WithLabelValues(rep.Command).Set(rep.DurationMS / 1000)

	families, err := reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather metrics: %w", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range families {
		if err := enc.Encode(mf); err != nil {
			return nil, fmt.Errorf("encode metric %s: %w", mf.GetName(), err)
		}
	}
	return buf.Bytes(), nil
}

// WriteMetrics replaces the textfile file, a path inside p.Root, atomically, so
// node_exporter never reads half a file. The file is world-readable (0644): it holds no
// secret.
func WriteMetrics(p paths.Paths, file string, rep *Report, end time.Time) error {
	data, err := Metrics(rep, end)
	if err != nil {
		return err
	}
	if err := p.WriteFile(file, data, 0o644); err != nil {
		return fmt.Errorf("write metrics file (--metrics-file): %w", err)
	}
	return nil
}
