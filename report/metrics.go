package report

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imdsmend/imdsmend/internal/paths"
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

// Metrics renders a report in the Prometheus text exposition format (version 0.0.4), written
// by hand: the client library's registry pulls protobuf and procfs into every run's
// start-up although only --metrics-file needs the text. The file holds imdsmend's gauges and
// nothing of the Go runtime. end is when the run finished.
func Metrics(rep *Report, end time.Time) []byte {
	var families []*gauge
	newGauge := func(name, help string, labels ...string) *gauge {
		g := &gauge{name: name, help: help, labels: labels}
		families = append(families, g)
		return g
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}

	newGauge(MetricHealthy, "1 when the last run left no open finding and no undecided rule.", "command").
		add(b2f(rep.Healthy), rep.Command)
	findings := newGauge(MetricFindingsOpen, "Findings open after the last run, by rule and severity.", "rule", "severity")
	for _, f := range rep.Findings {
		findings.add(1, f.Rule, string(f.Severity))
	}
	newGauge(MetricRulesUndecided, "Rules the last run could not decide (facts missing).").
		add(float64(len(rep.Unknown)))
	actions := newGauge(MetricActions, "Actions of the last run, by kind and status.", "kind", "status")
	for _, a := range rep.Actions {
		actions.add(1, a.Kind, string(a.Status))
	}
	if rep.IMDS != nil {
		newGauge(MetricIMDSUp, "1 when the IMDS probe got metadata.").add(b2f(rep.IMDS.Reachable))
		newGauge(MetricIMDSLatency, "Wall time of the IMDS probe, retries included.").
			add(rep.IMDS.LatencyMS / 1000)
		newGauge(MetricIMDSClass, "1 for the class of the IMDS probe's outcome (ok, timeout, http_403, …).", "class").
			add(1, string(rep.IMDS.Class))
	}
	newGauge(MetricLastRunTime, "When the last run ended, in seconds since the epoch.", "command").
		add(float64(end.UnixNano())/1e9, rep.Command)
	newGauge(MetricLastRunDuration, "How long the last run took.", "command").
		add(rep.DurationMS/1000, rep.Command)

	return Textfile(families...)
}

// Gauge is one metric family of a textfile; NewGauge makes one for a textfile of its own
// (imdsmend fleet writes one).
type Gauge = gauge

// NewGauge starts a gauge family whose series have the given labels.
func NewGauge(name, help string, labels ...string) *Gauge {
	return &gauge{name: name, help: help, labels: labels}
}

// Add adds v to the series with the given label values, starting it at 0.
func (g *gauge) Add(v float64, values ...string) { g.add(v, values...) }

// Textfile renders gauge families in the text exposition format.
func Textfile(families ...*Gauge) []byte {
	// Families by name and series by label values, as a Prometheus registry gathers them,
	// so the file reads the same from run to run.
	slices.SortFunc(families, func(a, b *gauge) int { return strings.Compare(a.name, b.name) })
	var buf bytes.Buffer
	for _, g := range families {
		g.write(&buf)
	}
	return buf.Bytes()
}

// gauge is one metric family of the textfile.
type gauge struct {
	name, help string
	labels     []string
	series     []sample
}

// sample is one series of a gauge: its label values, in the order of the gauge's labels.
type sample struct {
	values []string
	value  float64
}

// add adds v to the series with the given label values, starting it at 0.
func (g *gauge) add(v float64, values ...string) {
	for i := range g.series {
		if slices.Equal(g.series[i].values, values) {
			g.series[i].value += v
			return
		}
	}
	g.series = append(g.series, sample{values: values, value: v})
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	valueEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// write appends the family in the text format; a family without series is left out.
func (g *gauge) write(buf *bytes.Buffer) {
	if len(g.series) == 0 {
		return
	}
	slices.SortFunc(g.series, func(a, b sample) int { return slices.Compare(a.values, b.values) })
	fmt.Fprintf(buf, "# HELP %s %s\n# TYPE %s gauge\n", g.name, helpEscaper.Replace(g.help), g.name)
	for _, s := range g.series {
		buf.WriteString(g.name)
		for i, l := range g.labels {
			sep := ","
			if i == 0 {
				sep = "{"
			}
			// The format is UTF-8: a stray byte would make node_exporter reject the file.
			fmt.Fprintf(buf, `%s%s="%s"`, sep, l, valueEscaper.Replace(strings.ToValidUTF8(s.values[i], "\uFFFD")))
		}
		if len(g.labels) > 0 {
			buf.WriteByte('}')
		}
		buf.WriteByte(' ')
		buf.WriteString(strconv.FormatFloat(s.value, 'g', -1, 64))
		buf.WriteByte('\n')
	}
}

// WriteMetrics replaces the textfile file, a path inside p.Root, atomically, so
// node_exporter never reads half a file. The file is world-readable (0644): it holds no
// secret.
func WriteMetrics(p paths.Paths, file string, rep *Report, end time.Time) error {
	if err := p.WriteFile(file, Metrics(rep, end), 0o644); err != nil {
		return fmt.Errorf("write metrics file (--metrics-file): %w", err)
	}
	return nil
}
