package e2e

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/tests/harness"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
)

// BenchmarkCheck measures the whole `imdsmend check --format json` process on a healthy
// namespace: started from a thread inside the namespace (no `ip netns exec` in between),
// wall time per run, plus what IMDS saw per run and the run's own duration_ms.
func BenchmarkCheck(b *testing.B) {
	s, r := benchBed(b)
	var runMS float64
	for b.Loop() {
		out, err := r.direct("check", "--format", "json")
		if err != nil {
			b.Fatalf("imdsmend check: %v\n%s", err, out)
		}
		runMS += healthyRunMS(b, out)
	}
	reportLoad(b, s, runMS)
}

// direct runs `imdsmend COMMAND ARGS...` from a thread inside r's namespace, without `ip
// netns exec`, and returns its stdout.
func (r *run) direct(command string, args ...string) ([]byte, error) {
	var out bytes.Buffer
	err := r.ns.Do(func() error {
		cmd := exec.Command(bins.Imdsmend, r.args(command, args...)...)
		cmd.Env, cmd.Stdout = harness.Environ(), &out
		return cmd.Run()
	})
	return out.Bytes(), err
}

// BenchmarkCheckIPNetnsExec is BenchmarkCheck through `ip netns exec`, as the e2e tests
// and an operator run it; the difference is ip's own cost.
func BenchmarkCheckIPNetnsExec(b *testing.B) {
	s, r := benchBed(b)
	ctx := testContext(b)
	var runMS float64
	for b.Loop() {
		res := r.exec(ctx, "check", "--format", "json")
		if res.ExitCode != 0 {
			b.Fatalf("imdsmend check: exit %d\n%s%s", res.ExitCode, res.Stdout, res.Stderr)
		}
		runMS += healthyRunMS(b, []byte(res.Stdout))
	}
	reportLoad(b, s, runMS)
}

func benchBed(b *testing.B) (*harness.Sim, *run) {
	b.Helper()
	ctx := testContext(b)
	ns := newNamespace(b)
	s, err := harness.StartSim(ctx, ns, bins.Imdssim, sim.FaultOK)
	if err != nil {
		b.Fatal(err)
	}
	return s, newRun(b, ns)
}

// healthyRunMS checks the report says healthy and returns its duration_ms.
func healthyRunMS(b *testing.B, out []byte) float64 {
	b.Helper()
	var rep report.Report
	if err := json.Unmarshal(out, &rep); err != nil || !rep.Healthy {
		b.Fatalf("not a healthy report (%v):\n%s", err, out)
	}
	return rep.DurationMS
}

// reportLoad adds IMDS's requests and connections per run, and the runs' own duration.
func reportLoad(b *testing.B, s *harness.Sim, runMS float64) {
	b.Helper()
	st, err := s.Admin.Stats(testContext(b))
	if err != nil {
		b.Fatal(err)
	}
	n := float64(b.N)
	b.ReportMetric(float64(st.Requests)/n, "requests/op")
	b.ReportMetric(float64(st.Connections)/n, "conns/op")
	b.ReportMetric(runMS/n, "run-ms/op")
}
