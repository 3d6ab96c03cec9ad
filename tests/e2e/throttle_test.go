package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
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

// capNobody opts in to rate_limit_caller for the user nobody: one new connection to IMDS
// a minute, so a second one in the test is over the cap whatever the machine's speed.
const capNobody = `rule "cap_imds_caller" {
  when     = facts.imds.reachable
  severity = "info"
  summary  = "nobody's connections to IMDS are capped"
  remediate "rate_limit_caller" {
    user  = "nobody"
    rate  = "1/minute"
    burst = 1
  }
}
`

// TestRateLimitCaller: apply inserts the hashlimit rule with real iptables in a
// namespace; nobody's second connection within the minute is reset while root's pass; a
// second apply changes nothing; undo deletes the rule and nobody connects again.
func TestRateLimitCaller(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	serveSim(sim.FaultOK)(ctx, t, ns)
	r := newRun(t, ns)
	r.dropIn("60-cap.hcl", capNobody)

	rep, res := r.report(ctx, "apply")
	acts := actionsOf(rep, "rate_limit_caller")
	if len(acts) != 1 || acts[0].Status != "applied" || !strings.Contains(acts[0].Detail, "iptables -t filter -I OUTPUT 1 -d 169.254.169.254/32") ||
		!strings.Contains(acts[0].Detail, "--uid-owner 65534 -m hashlimit --hashlimit-above 1/minute --hashlimit-burst 1") {
		t.Fatalf("apply: exit %d, actions %+v\n%s", res.ExitCode, rep.Actions, res.Stderr)
	}
	if !strings.Contains(iptablesOutput(ctx, t, ns), "imdsmend:rate_limit_caller uid 65534") {
		t.Errorf("no rate limit rule in OUTPUT:\n%s", iptablesOutput(ctx, t, ns))
	}
	if first, second := connectAs(ctx, t, ns, "65534"), connectAs(ctx, t, ns, "65534"); first != 0 || second != 7 {
		t.Errorf("nobody's connections: curl exits %d then %d; want 0 (connected) then 7 (reset)", first, second)
	}
	if code := connectAs(ctx, t, ns, "0"); code != 0 {
		t.Errorf("root's connection: curl exits %d; want it untouched", code)
	}

	rep, _ = r.report(ctx, "apply")
	if acts := actionsOf(rep, "rate_limit_caller"); len(acts) != 0 {
		t.Errorf("a second apply: actions %+v; want none", acts)
	}

	rep, res = r.report(ctx, "undo", "--last")
	if res.ExitCode != 0 || len(rep.Actions) != 1 || rep.Actions[0].Status != "reverted" ||
		!strings.HasPrefix(rep.Actions[0].Detail, "iptables -t filter -D OUTPUT -d 169.254.169.254/32") {
		t.Fatalf("undo: exit %d, actions %+v\n%s", res.ExitCode, rep.Actions, res.Stderr)
	}
	if out := iptablesOutput(ctx, t, ns); strings.Contains(out, "hashlimit") {
		t.Errorf("after undo OUTPUT holds:\n%s", out)
	}
	if code := connectAs(ctx, t, ns, "65534"); code != 0 {
		t.Errorf("nobody after undo: curl exits %d; want 0", code)
	}
}

func iptablesOutput(ctx context.Context, t *testing.T, ns *harness.Namespace) string {
	t.Helper()
	res, err := ns.Exec(ctx, nil, "iptables", "-w", "-S", "OUTPUT")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("iptables -S OUTPUT: %v %+v", err, res)
	}
	return res.Stdout
}

// connectAs opens one connection to IMDS as uid and returns curl's exit code: 0 when it
// connected (whatever the HTTP status), 7 when the connection was refused or reset.
func connectAs(ctx context.Context, t *testing.T, ns *harness.Namespace, uid string) int {
	t.Helper()
	res, err := ns.Exec(ctx, nil, "setpriv", "--reuid="+uid, "--regid="+uid, "--clear-groups",
		"curl", "-s", "-o", "/dev/null", "-m", "5", "http://"+harness.IMDSAddr+"/latest/meta-data/")
	if err != nil {
		t.Fatal(err)
	}
	return res.ExitCode
}

// TestOwnRequests counts, with the simulator's counters, the requests each command costs
// IMDS, healthy and throttled (docs/operating.md): a healthy run is one token PUT and one
// GET over one connection; under throttling the PUT is tried MaxAttempts (3) times, and a
// 429 there ends the probe. Apply with nothing to change does not probe again.
func TestOwnRequests(t *testing.T) {
	tests := []struct {
		command string
		fault   sim.Fault
		max     int64 // requests
		conns   int64 // at most, TCP connections
	}{
		{"check", sim.FaultOK, 2, 1},
		{"plan", sim.FaultOK, 2, 1},
		{"apply", sim.FaultOK, 2, 1},
		{"check", sim.FaultThrottle, 3, 1},
		{"apply", sim.FaultThrottle, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.command+" "+string(tt.fault), func(t *testing.T) {
			ctx := testContext(t)
			ns := newNamespace(t)
			s, err := harness.StartSim(ctx, ns, bins.Imdssim, tt.fault)
			if err != nil {
				t.Fatal(err)
			}
			r := newRun(t, ns)
			if _, res := r.report(ctx, tt.command); res.ExitCode > report.ExitFindings {
				t.Fatalf("%s: exit %d\n%s", tt.command, res.ExitCode, res.Stderr)
			}
			st, err := s.Admin.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s against %s: %d requests over %d connections", tt.command, tt.fault, st.Requests, st.Connections)
			if st.Requests == 0 || st.Requests > tt.max || st.Connections > tt.conns {
				t.Errorf("%s against %s cost %d requests over %d connections; want 1 to %d over at most %d",
					tt.command, tt.fault, st.Requests, st.Connections, tt.max, tt.conns)
			}
		})
	}
}

// TestOwnRequestsOneToken: the probes of one process share one IMDSv2 token and one
// keep-alive connection: an apply that changes something and probes again sends one token
// PUT over one connection, and so does a watch whose passes come within the token's TTL.
func TestOwnRequestsOneToken(t *testing.T) {
	simRun := func(t *testing.T) (context.Context, *harness.Namespace, *harness.Sim, *run) {
		ctx := testContext(t)
		ns := newNamespace(t)
		s, err := harness.StartSim(ctx, ns, bins.Imdssim, sim.FaultOK)
		if err != nil {
			t.Fatal(err)
		}
		return ctx, ns, s, newRun(t, ns)
	}
	t.Run("apply", func(t *testing.T) {
		ctx, _, s, r := simRun(t)
		r.dropIn("60-cap.hcl", capNobody)
		rep, res := r.report(ctx, "apply")
		if acts := actionsOf(rep, "rate_limit_caller"); len(acts) != 1 || acts[0].Status != "applied" {
			t.Fatalf("apply: exit %d, actions %+v; want rate_limit_caller applied\n%s", res.ExitCode, rep.Actions, res.Stderr)
		}
		st, err := s.Admin.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.TokenPuts != 1 || st.Gets != 2 || st.Connections != 1 {
			t.Errorf("apply with a re-probe: %d token PUTs, %d GETs over %d connections; want 1, 2, 1", st.TokenPuts, st.Gets, st.Connections)
		}
	})
	t.Run("watch", func(t *testing.T) {
		ctx, ns, s, r := simRun(t)
		n := listenNotify(t)
		name, args := hermetic("sh", watchArgs(r)...)
		cmd := ns.Command(context.Background(), name, args...)
		cmd.Env = harness.Environ("NOTIFY_SOCKET=" + n.path)
		w := startWatch(t, cmd)
		n.expect(t, 20*time.Second, "READY=1")
		// Each reload asks for a pass; its STATUS says it ended.
		const reloads = 3
		for range reloads {
			w.signal(syscall.SIGHUP)
			n.expect(t, 10*time.Second, "RELOADING=1")
			n.expect(t, 10*time.Second, "READY=1")
			n.expect(t, 20*time.Second, "STATUS=healthy")
		}
		st, err := s.Admin.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.TokenPuts != 1 || st.Gets != reloads+1 {
			t.Errorf("%d watch passes: %d token PUTs and %d GETs over %d connections; want 1 PUT and %d GETs",
				reloads+1, st.TokenPuts, st.Gets, st.Connections, reloads+1)
		}
		w.signal(syscall.SIGTERM)
		if code := w.wait(10 * time.Second); code != 0 {
			t.Errorf("watch exit %d after SIGTERM\n%s", code, w.stderr.String())
		}
	})
}
