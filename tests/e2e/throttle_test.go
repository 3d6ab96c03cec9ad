package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imdsmend/imdsmend/facts/callers"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/tests/harness"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
)

// TestNICFactsNotENA: in a namespace shaped like an instance, the primary ENI is a veth,
// so facts.nic lists it as unavailable with the reason (not zero counters) and the run
// keeps no counters in state.json.
func TestNICFactsNotENA(t *testing.T) {
	ctx := testContext(t)
	ns := instanceBed(ctx, t)
	r := newRun(t, ns)
	f := factsIn(ctx, t, ns, r, nil)
	if f.NIC == nil || !f.Probes["nic"].OK {
		t.Fatalf("nic section %+v, probe %+v; want it filled", f.NIC, f.Probes["nic"])
	}
	var eth0 bool
	for _, in := range f.NIC.Interfaces {
		if in.Available || in.Reason == "" || len(in.Counters) != 0 {
			t.Errorf("interface %+v; want unavailable with a reason", in)
		}
		eth0 = eth0 || (in.Name == "eth0" && in.Driver == "veth")
	}
	if !eth0 || f.NIC.LinkLocalExceededDelta != 0 {
		t.Errorf("nic %+v; want eth0 (veth) listed, no delta", f.NIC)
	}
}

// TestThrottledCallerNamed: IMDS throttles (the simulator's throttle fault) while a real
// caller, curl over one keep-alive connection, hammers it from inside the namespace. The
// finding names that process by PID and command in the JSON report (summary and
// evidence) and in the text report.
func TestThrottledCallerNamed(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	// Rate 0: every request is answered 429, so imdsmend's own probe sees the throttling
	// whatever the second's window holds.
	s, err := harness.StartSim(ctx, ns, bins.Imdssim, sim.FaultThrottle, "--rate", "0")
	if err != nil {
		t.Fatal(err)
	}
	// Bounded in count and time; stopped below, or with the namespace.
	caller, err := ns.Start("sh", "-c", `exec curl -s --rate 200/s -m 60 "http://`+harness.IMDSAddr+`/latest/meta-data/instance-id?n=[1-10000]" >/dev/null`)
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Stop()
	waitRequests(ctx, t, s, 5)

	r := newRun(t, ns)
	rep, res := r.report(ctx, "check")
	if res.ExitCode != report.ExitFindings {
		t.Fatalf("check: exit %d\n%s", res.ExitCode, res.Stderr)
	}
	f := finding(rep, "imds_throttled")
	if f == nil {
		t.Fatalf("no imds_throttled finding: %v", findingRules(rep))
	}
	named := fmt.Sprintf("curl (PID %d", caller.PID())
	if !strings.Contains(f.Summary, named) {
		t.Errorf("summary %q does not name %s)", f.Summary, named)
	}
	var ev struct {
		ImdsClass  string           `json:"imds_class"`
		TopCallers []callers.Caller `json:"top_callers"`
	}
	if err := json.Unmarshal(f.Evidence, &ev); err != nil {
		t.Fatalf("evidence %s: %v", f.Evidence, err)
	}
	if ev.ImdsClass != "http_429" || len(ev.TopCallers) == 0 || ev.TopCallers[0].PID != caller.PID() ||
		ev.TopCallers[0].Command != "curl" || ev.TopCallers[0].Connections < 1 {
		t.Errorf("evidence %s; want class http_429 and curl (PID %d) first", f.Evidence, caller.PID())
	}
	if text := r.exec(ctx, "check"); !strings.Contains(text.Stdout, named) {
		t.Errorf("the text report does not name %s):\n%s", named, text.Stdout)
	}
	caller.Stop()
}

// waitRequests returns once the simulator has counted n requests.
func waitRequests(ctx context.Context, t *testing.T, s *harness.Sim, n int64) {
	t.Helper()
	for backoff := time.Millisecond; ; backoff = min(2*backoff, 50*time.Millisecond) {
		st, err := s.Admin.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Requests >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the simulator saw %d requests, waiting for %d: %v", st.Requests, n, ctx.Err())
		case <-time.After(backoff):
		}
	}
}

// finding is the report's open finding of rule, or nil.
func finding(rep *report.Report, rule string) *report.Finding {
	for i := range rep.Findings {
		if rep.Findings[i].Rule == rule {
			return &rep.Findings[i]
		}
	}
	return nil
}
