package e2e

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/facts/imds"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/tests/harness"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
)

// serveSim and serveAEMM put an IMDS on the namespace's 169.254.169.254:80.
func serveSim(fault sim.Fault, flags ...string) func(context.Context, testing.TB, *harness.Namespace) {
	return func(ctx context.Context, t testing.TB, ns *harness.Namespace) {
		t.Helper()
		if _, err := harness.StartSim(ctx, ns, bins.Imdssim, fault, flags...); err != nil {
			t.Fatal(err)
		}
	}
}

func serveAEMM(ctx context.Context, t testing.TB, ns *harness.Namespace) {
	t.Helper()
	if _, err := harness.StartAEMM(ctx, ns, bins.AEMM); err != nil {
		t.Fatal(err)
	}
}

// blocked serves IMDS, then puts a blocker in front of it.
func blocked(serve func(context.Context, testing.TB, *harness.Namespace), m harness.Maker) func(context.Context, testing.TB, *harness.Namespace) {
	return func(ctx context.Context, t testing.TB, ns *harness.Namespace) {
		t.Helper()
		if serve != nil {
			serve(ctx, t, ns)
		}
		if err := m.Make(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
}

// startSlack is what a process may take beyond its run to start and exit on a loaded
// machine; only a process that lingers (on a stuck probe, say) exceeds it.
const startSlack = 5 * time.Second

// TestCheckIMDS runs `imdsmend check` against every IMDS class and asserts the probe's
// verdict, the policy's findings and the exit code. Findings other probes add (a firewall
// rule behind a refusal, say) are allowed; the ones listed must be there.
func TestCheckIMDS(t *testing.T) {
	const bound = 1500 * time.Millisecond
	tests := []struct {
		name    string
		setup   func(context.Context, testing.TB, *harness.Namespace)
		timeout time.Duration // --timeout; when set, the run (duration_ms) must end within it
		want    types.IMDS    // Class, Version, Stage, Status, Reachable
		rules   []string      // findings that must be open
		exit    int
	}{
		{"healthy v2 (ec2-metadata-mock)", serveAEMM, 0,
			types.IMDS{Reachable: true, Version: "v2", Class: "ok", Stage: "get", Status: 200}, nil, report.ExitHealthy},
		{"healthy v2 (imdssim)", serveSim(sim.FaultOK), 0,
			types.IMDS{Reachable: true, Version: "v2", Class: "ok", Stage: "get", Status: 200}, nil, report.ExitHealthy},
		{"v1 only", serveSim(sim.FaultV1Only), 0,
			types.IMDS{Reachable: true, Version: "v1", Class: "ok", Stage: "get", Status: 200}, nil, report.ExitHealthy},
		{"slow but within bounds", serveSim(sim.FaultSlow, "--delay", "300ms"), 0,
			types.IMDS{Reachable: true, Version: "v2", Class: "ok", Stage: "get", Status: 200}, nil, report.ExitHealthy},
		{"X-Forwarded-For refused, never sent", serveSim(sim.FaultXFF), 0,
			types.IMDS{Reachable: true, Version: "v2", Class: "ok", Stage: "get", Status: 200}, nil, report.ExitHealthy},
		{"no listener", func(context.Context, testing.TB, *harness.Namespace) {}, 0,
			types.IMDS{Class: "connection_refused", Stage: "token"}, []string{"imds_unreachable"}, report.ExitFindings},
		{"iptables REJECT", blocked(serveSim(sim.FaultOK), harness.RejectIMDS), 0,
			types.IMDS{Class: "connection_refused", Stage: "token"}, []string{"imds_unreachable"}, report.ExitFindings},
		{"iptables DROP", blocked(serveSim(sim.FaultOK), harness.DropIMDS), bound,
			types.IMDS{Class: "timeout", Stage: "token"}, []string{"imds_unreachable"}, report.ExitFindings},
		{"no route", blocked(nil, harness.UnrouteIMDS), 0,
			types.IMDS{Class: "no_route", Stage: "token"}, []string{"imds_unreachable"}, report.ExitFindings},
		{"endpoint disabled (403)", serveSim(sim.FaultDisabled), 0,
			types.IMDS{Class: "http_403", Stage: "token", Status: 403}, []string{"imds_endpoint_disabled"}, report.ExitFindings},
		{"throttled (429)", serveSim(sim.FaultThrottle), 0,
			types.IMDS{Class: "http_429", Stage: "token", Status: 429}, []string{"imds_throttled"}, report.ExitFindings},
		{"server error (500)", serveSim(sim.Fault500), 0,
			types.IMDS{Class: "http_5xx", Stage: "token", Status: 500}, []string{"imds_http_error"}, report.ExitFindings},
		{"hang", serveSim(sim.FaultHang), bound,
			types.IMDS{Class: "timeout", Stage: "token"}, []string{"imds_unreachable"}, report.ExitFindings},
		{"garbage body", serveSim(sim.FaultGarbage), 0,
			types.IMDS{Class: "bad_response", Stage: "get", Status: 200}, []string{"imds_http_error"}, report.ExitFindings},
		{"oversized body", serveSim(sim.FaultOversized), 0,
			types.IMDS{Class: "bad_response", Stage: "get", Status: 200}, []string{"imds_http_error"}, report.ExitFindings},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			ns := newNamespace(t)
			tt.setup(ctx, t, ns)
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			rep, res := newRun(t, ns).report(ctx, "check", "--timeout", timeout.String())
			if rep.IMDS == nil {
				t.Fatalf("report has no imds object\n%s", res.Stdout)
			}
			got := types.IMDS{Reachable: rep.IMDS.Reachable, Version: rep.IMDS.Version, Class: rep.IMDS.Class, Stage: rep.IMDS.Stage, Status: rep.IMDS.Status}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("imds (-want +got):\n%s\nerror: %s", diff, rep.IMDS.Error)
			}
			rules := findingRules(rep)
			for _, r := range tt.rules {
				if !slices.Contains(rules, r) {
					t.Errorf("findings %v lack %s", rules, r)
				}
			}
			if tt.rules == nil && len(rules) > 0 {
				t.Errorf("healthy IMDS, yet findings %v", rules)
			}
			if res.ExitCode != tt.exit {
				t.Errorf("exit %d, want %d\nstderr: %s", res.ExitCode, tt.exit, res.Stderr)
			}
			// --timeout bounds the run, which the report times. The process around it also
			// starts, loads the policy and exits, which a busy machine may stretch; its wall
			// time only has to show that nothing kept it running long after the run.
			if run := time.Duration(rep.DurationMS * float64(time.Millisecond)); tt.timeout > 0 && run > tt.timeout {
				t.Errorf("the run took %v (duration_ms), beyond --timeout %v", run, tt.timeout)
			}
			if tt.timeout > 0 && res.Duration > tt.timeout+startSlack {
				t.Errorf("the process took %v, beyond --timeout %v and %v to start and exit", res.Duration, tt.timeout, startSlack)
			}
		})
	}
}

// The endpoint-disabled rule alone fires for a 403 on the token PUT; the generic HTTP error
// rule stays quiet so the operator reads one diagnosis.
func TestCheckIMDSDisabledIsOneFinding(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	serveSim(sim.FaultDisabled)(ctx, t, ns)
	rep, _ := newRun(t, ns).report(ctx, "check")
	if rules := findingRules(rep); slices.Contains(rules, "imds_http_error") || !slices.Contains(rules, "imds_endpoint_disabled") {
		t.Errorf("findings %v, want imds_endpoint_disabled without imds_http_error", rules)
	}
}

// A healthy check costs IMDS at most two requests over one connection and never carries
// X-Forwarded-For; a fault switched on at run time shows in the next check.
func TestCheckIMDSLoadAndRuntimeFault(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	s, err := harness.StartSim(ctx, ns, bins.Imdssim, sim.FaultOK)
	if err != nil {
		t.Fatal(err)
	}
	r := newRun(t, ns)
	if rep, res := r.report(ctx, "check"); rep.IMDS.Class != "ok" || res.ExitCode != 0 {
		t.Fatalf("healthy check: class %s, exit %d: %s", rep.IMDS.Class, res.ExitCode, rep.IMDS.Error)
	}
	st, err := s.Admin.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Requests > 2 || st.Connections != 1 || st.ForwardedFor != 0 {
		t.Errorf("a healthy check cost %d requests over %d connections (%d with X-Forwarded-For); want at most 2 over 1, none forwarded",
			st.Requests, st.Connections, st.ForwardedFor)
	}

	if err := s.Admin.SetConfig(ctx, sim.Config{Fault: sim.FaultThrottle}); err != nil {
		t.Fatal(err)
	}
	rep, res := r.report(ctx, "check")
	if rep.IMDS.Class != "http_429" || !slices.Contains(findingRules(rep), "imds_throttled") || res.ExitCode != report.ExitFindings {
		t.Errorf("after switching to throttle: class %s, findings %v, exit %d", rep.IMDS.Class, findingRules(rep), res.ExitCode)
	}
}

// With settings.ipv6 the probe also asks [fd00:ec2::254].
func TestFactsIMDSIPv6(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	serveSim(sim.FaultOK)(ctx, t, ns)
	r := newRun(t, ns)
	r.dropIn("50-ipv6.hcl", "settings {\n  ipv6 = true\n}\n")
	res := r.exec(ctx, "facts", "--format", "json")
	var f facts.Facts
	if err := json.Unmarshal([]byte(res.Stdout), &f); err != nil {
		t.Fatalf("facts: exit %d, no JSON: %v\n%s\n%s", res.ExitCode, err, res.Stdout, res.Stderr)
	}
	if f.IMDSv6 == nil || f.IMDSv6.Class != "ok" || f.IMDSv6.Endpoint != imds.DefaultV6Endpoint {
		t.Errorf("imds_ipv6 = %+v, want class ok at %s", f.IMDSv6, imds.DefaultV6Endpoint)
	}
	if f.IMDS == nil || f.IMDS.Class != "ok" {
		t.Errorf("imds = %+v, want class ok", f.IMDS)
	}
}

// Every maker's blocker is reported gone only once it is removed.
func TestMakersGone(t *testing.T) {
	for _, m := range harness.Makers() {
		t.Run(m.Name, func(t *testing.T) {
			ctx := testContext(t)
			ns := newNamespace(t)
			if err := m.Gone(ctx, ns); err != nil {
				t.Fatalf("fresh namespace: %v", err)
			}
			if err := m.Make(ctx, ns); err != nil {
				t.Fatal(err)
			}
			if err := m.Gone(ctx, ns); err == nil {
				t.Error("Gone reports nothing left right after Make")
			}
		})
	}
}
