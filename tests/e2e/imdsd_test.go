package e2e

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/tests/harness"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
)

// imdsdBed is an instance whose IMDS (the simulator, across the ENI) is mediated by
// systemd-imdsd: a prohibit route stops direct requests, the daemon's fwmark rule routes
// its own.
func imdsdBed(ctx context.Context, t *testing.T) (*harness.Namespace, *harness.Sim) {
	t.Helper()
	ns := newNamespace(t)
	imds, err := harness.RouteViaENI(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	s, err := harness.StartSim(ctx, imds, bins.Imdssim, sim.FaultOK)
	if err != nil {
		t.Fatal(err)
	}
	if err := harness.SystemdIMDSLayout(ctx, ns); err != nil {
		t.Fatal(err)
	}
	return ns, s
}

// TestCheckSystemdIMDS: under systemd-imdsd root's probe takes the daemon's path (its
// fwmark): a working IMDS behind it is healthy, exit 0, and the report says the path was
// mediated; an IMDS that fails behind it is still a critical finding.
func TestCheckSystemdIMDS(t *testing.T) {
	tests := []struct {
		name  string
		fault func(context.Context, *testing.T, *harness.Sim)
		want  types.IMDS // Reachable, Class, MediatedBy, Marked
		rules []string   // all open findings
		exit  int
	}{
		{name: "healthy behind the daemon",
			want:  types.IMDS{Reachable: true, Class: types.ClassOK, MediatedBy: "systemd-imdsd", Marked: true},
			rules: []string{}, exit: report.ExitHealthy},
		{name: "IMDS stopped behind the daemon",
			fault: func(_ context.Context, _ *testing.T, s *harness.Sim) { s.Proc.Stop() },
			want:  types.IMDS{Class: types.ClassConnectionRefused, MediatedBy: "systemd-imdsd", Marked: true},
			rules: []string{"imds_unreachable"}, exit: report.ExitFindings},
		{name: "IMDS failing behind the daemon",
			fault: func(ctx context.Context, t *testing.T, s *harness.Sim) {
				if err := s.Admin.SetConfig(ctx, sim.Config{Fault: sim.Fault500}); err != nil {
					t.Fatal(err)
				}
			},
			want:  types.IMDS{Class: types.ClassHTTP5xx, MediatedBy: "systemd-imdsd", Marked: true},
			rules: []string{"imds_http_error"}, exit: report.ExitFindings},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			ns, s := imdsdBed(ctx, t)
			if tt.fault != nil {
				tt.fault(ctx, t, s)
			}
			r := newRun(t, ns)
			r.dropIn("50-fast.hcl", fastDrop)
			rep, res := r.report(ctx, "check")
			if rep.IMDS == nil {
				t.Fatalf("report has no imds object\n%s", res.Stdout)
			}
			got := types.IMDS{Reachable: rep.IMDS.Reachable, Class: rep.IMDS.Class, MediatedBy: rep.IMDS.MediatedBy, Marked: rep.IMDS.Marked}
			if got != tt.want {
				t.Errorf("imds %+v, want %+v\nerror: %s", got, tt.want, rep.IMDS.Error)
			}
			if rules := findingRules(rep); !slices.Equal(rules, tt.rules) {
				t.Errorf("findings %v, want %v", rules, tt.rules)
			}
			for _, f := range rep.Findings {
				if f.Severity != "critical" {
					t.Errorf("finding %s is %s, want critical", f.Rule, f.Severity)
				}
			}
			if res.ExitCode != tt.exit {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", res.ExitCode, tt.exit, res.Stdout, res.Stderr)
			}
		})
	}
}

// TestCheckSystemdIMDSUnprivileged: a process that may not mark its sockets cannot take
// systemd-imdsd's path; it reports IMDS as mediated and unverified (info), not unreachable.
func TestCheckSystemdIMDSUnprivileged(t *testing.T) {
	ctx := testContext(t)
	ns, _ := imdsdBed(ctx, t)
	bin := forNobody(t, bins.Imdsmend)
	policy, err := harness.WritePolicy(filepath.Dir(bin))
	if err != nil {
		t.Fatal(err)
	}
	res, err := ns.Exec(ctx, nil, "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", bin,
		"check", "--policy", policy, "--state-dir", filepath.Join(filepath.Dir(bin), "state"), "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	rep := decodeReport(t, "check", res)
	if rep.IMDS == nil || rep.IMDS.MediatedBy != "systemd-imdsd" || rep.IMDS.Marked || rep.IMDS.Class != types.ClassNoRoute {
		t.Errorf("imds %+v, want no_route mediated by systemd-imdsd, not marked", rep.IMDS)
	}
	var got []string
	for _, f := range rep.Findings {
		got = append(got, f.Rule+" "+string(f.Severity))
	}
	if want := []string{"imds_mediated_unverified info"}; !slices.Equal(got, want) {
		t.Errorf("findings %v, want %v", got, want)
	}
}
