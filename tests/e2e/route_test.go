package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/tests/harness"
)

const allowRoutes = "settings {\n  allow {\n    routes = true\n  }\n}\n"

// instanceBed is a namespace shaped like an instance: IMDS (ec2-metadata-mock) behind the
// primary ENI eth0.
func instanceBed(ctx context.Context, t *testing.T) *harness.Namespace {
	t.Helper()
	ns := newNamespace(t)
	imds, err := harness.RouteViaENI(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	serveAEMM(ctx, t, imds)
	return ns
}

// In the test namespaces IMDS is on loopback: a local route, which is fine.
func TestRouteLocalIsFine(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	serveAEMM(ctx, t, ns)
	r := newRun(t, ns)
	f := factsIn(ctx, t, ns, r, nil)
	if f.Route == nil || f.Route.Type != "local" || f.Route.Interface != "lo" || !f.Route.OK {
		t.Errorf("route %+v, want local via lo, ok", f.Route)
	}
	if rep, res := r.report(ctx, "check"); res.ExitCode != report.ExitHealthy {
		t.Errorf("check: exit %d, findings %v", res.ExitCode, findingRules(rep))
	}
}

// TestRouteBlockers: a route that refuses or misroutes IMDS is reported; the default
// policy only plans the fix as skipped. With routes allowed, apply restores the route via
// the primary ENI, a second apply does nothing, and undo brings back the routing as it was.
func TestRouteBlockers(t *testing.T) {
	tests := []struct {
		maker        harness.Maker
		detail, undo string // what apply and undo say they do
	}{
		{harness.ProhibitRouteIMDS, "ip route replace 169.254.169.254/32 via 10.254.0.1 dev eth0 (replacing prohibit 169.254.169.254/32)", "ip route replace prohibit 169.254.169.254/32"},
		{harness.NoRouteIMDS, "ip route add 169.254.169.254/32 dev eth0", "ip route del unicast 169.254.169.254/32 dev eth0"},
		{harness.SecondaryENIRouteIMDS, "ip route replace 169.254.169.254/32 via 10.254.0.1 dev eth0 (replacing unicast 169.254.169.254/32 dev eth1)", "ip route replace unicast 169.254.169.254/32 dev eth1"},
	}
	for _, tt := range tests {
		t.Run(tt.maker.Name, func(t *testing.T) {
			ctx := testContext(t)
			ns := instanceBed(ctx, t)
			r := newRun(t, ns)
			r.dropIn("50-fast.hcl", fastDrop)
			if err := tt.maker.Make(ctx, ns); err != nil {
				t.Fatal(err)
			}
			before := routeState(ctx, t, ns)

			rep, res := r.report(ctx, "check")
			if res.ExitCode != report.ExitFindings || !slices.Contains(findingRules(rep), "no_route_to_imds") {
				t.Fatalf("check: exit %d, findings %v; want no_route_to_imds", res.ExitCode, findingRules(rep))
			}

			// Routes are not allowed by default: plan shows the fix, skipped.
			rep, _ = r.report(ctx, "apply")
			acts := routeActions(rep)
			if len(acts) != 1 || acts[0].Status != "skipped" || !strings.Contains(acts[0].Error, "routes = true") {
				t.Fatalf("apply under the default policy: actions %+v; want one skipped naming allow.routes", acts)
			}
			if got := routeState(ctx, t, ns); got != before {
				t.Fatalf("routes changed though not allowed:\n%s", cmp.Diff(before, got))
			}

			r.dropIn("60-routes.hcl", allowRoutes)
			rep, res = r.report(ctx, "plan")
			planned := routeActions(rep)
			if res.ExitCode != report.ExitFindings || len(planned) != 1 || planned[0].Status != "planned" ||
				planned[0].Target != "route 169.254.169.254/32 table main" || planned[0].Detail != tt.detail {
				t.Fatalf("plan: exit %d, actions %+v; want one planned: %s", res.ExitCode, planned, tt.detail)
			}

			rep, res = r.report(ctx, "apply")
			if res.ExitCode != report.ExitHealthy || rep.IMDS == nil || rep.IMDS.Class != "ok" {
				t.Fatalf("apply: exit %d, imds %+v, findings %v, actions %+v", res.ExitCode, rep.IMDS, findingRules(rep), rep.Actions)
			}
			if acts := routeActions(rep); len(acts) != 1 || acts[0].Status != "applied" || acts[0].ID != planned[0].ID {
				t.Errorf("apply actions %+v, want the planned one applied", acts)
			}
			if err := tt.maker.Gone(ctx, ns); err != nil {
				t.Error(err)
			}

			if rep, res := r.report(ctx, "apply"); res.ExitCode != report.ExitHealthy || len(rep.Actions) != 0 {
				t.Errorf("second apply: exit %d, actions %+v", res.ExitCode, rep.Actions)
			}

			// Undo says what it did, and exits 0 for a complete undo though the blocker is back.
			rep, res = r.report(ctx, "undo", "--last")
			if res.ExitCode != 0 || len(rep.Actions) != 1 || rep.Actions[0].Status != "reverted" || rep.Actions[0].Detail != tt.undo {
				t.Errorf("undo: exit %d, actions %+v; want exit 0, reverted: %s", res.ExitCode, rep.Actions, tt.undo)
			}
			if got := routeState(ctx, t, ns); got != before {
				t.Errorf("undo did not restore the routes (-before +after):\n%s", cmp.Diff(before, got))
			}
		})
	}
}

// TestRouteSystemdIMDS: systemd-imdsd's prohibit route with its fwmark rule is
// intentional: no no_route_to_imds finding, and no route change even with routes allowed.
func TestRouteSystemdIMDS(t *testing.T) {
	ctx := testContext(t)
	ns := instanceBed(ctx, t)
	if err := harness.SystemdIMDSLayout(ctx, ns); err != nil {
		t.Fatal(err)
	}
	before := routeState(ctx, t, ns)
	r := newRun(t, ns)
	r.dropIn("50-fast.hcl", fastDrop)
	r.dropIn("60-routes.hcl", allowRoutes)
	f := factsIn(ctx, t, ns, r, nil)
	if f.Route == nil || f.Route.Type != "prohibit" || f.Route.ManagedBy != "systemd-imdsd" {
		t.Errorf("route %+v, want prohibit managed by systemd-imdsd", f.Route)
	}
	rep, _ := r.report(ctx, "apply")
	if slices.Contains(findingRules(rep), "no_route_to_imds") || len(routeActions(rep)) != 0 {
		t.Errorf("findings %v, actions %+v; want neither no_route_to_imds nor a route action", findingRules(rep), rep.Actions)
	}
	if got := routeState(ctx, t, ns); got != before {
		t.Errorf("systemd-imdsd's routing was touched:\n%s", cmp.Diff(before, got))
	}
}

func routeActions(rep *report.Report) []report.Action { return actionsOf(rep, "route_restore") }

// routeState is ns's routing (harness.Namespace.RouteState).
func routeState(ctx context.Context, t *testing.T, ns *harness.Namespace) string {
	return mustState(t)(ns.RouteState(ctx))
}

// TestRouteReplacesTheRouteInUse: with several main-table routes to 169.254.169.254/32 the
// kernel uses the one with the lowest metric, and that is the route the plan names as
// replaced (and undo would put back), not another one beside it.
func TestRouteReplacesTheRouteInUse(t *testing.T) {
	ctx := testContext(t)
	ns := instanceBed(ctx, t)
	r := newRun(t, ns)
	r.dropIn("50-fast.hcl", fastDrop)
	for _, args := range [][]string{
		{"link", "add", "eth1", "type", "veth", "peer", "name", "eth1p"},
		{"link", "set", "eth1", "up"},
		{"route", "add", "unicast", harness.IMDSAddr + "/32", "dev", "eth1", "metric", "100"},
		{"route", "add", "prohibit", harness.IMDSAddr + "/32", "metric", "10"},
	} {
		if res, err := ns.Exec(ctx, nil, "ip", args...); err != nil || res.ExitCode != 0 {
			t.Fatalf("ip %v: %v %s", args, err, res.Stderr)
		}
	}
	rep, _ := r.report(ctx, "plan")
	acts := routeActions(rep)
	if len(acts) != 1 || !strings.Contains(acts[0].Detail, "(replacing prohibit 169.254.169.254/32") {
		t.Fatalf("plan: route actions %+v; want one replacing the metric-10 prohibit route", acts)
	}
}
