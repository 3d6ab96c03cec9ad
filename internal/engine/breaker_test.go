package engine

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/remediate"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/rules"
)

// TestBreakerFight: a marker something keeps setting back to "leak" is fixed four times
// (the first fix and settings.breaker's 3 re-applications), then held with a critical
// remediation_loop finding — also after a restart (a new engine on the same state) — until
// `imdsmend reset` or a changed policy.
func TestBreakerFight(t *testing.T) {
	ctx := context.Background()
	e, root := newFlow(t, map[string]string{"a": "leak"})
	readd := func() {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, "markers/a"), []byte("leak"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	apply := func(e *Engine) *report.Report {
		t.Helper()
		readd()
		rep, err := e.Run(ctx, types.CommandApply)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	for i := range 4 {
		if rep := apply(e); len(rep.Actions) != 1 || rep.Actions[0].Status != types.StatusApplied || !rep.Healthy {
			t.Fatalf("apply %d: actions %+v, healthy %v; want the fix applied", i+1, rep.Actions, rep.Healthy)
		}
	}
	held := func(e *Engine, what string) {
		t.Helper()
		rep := apply(e)
		if len(rep.Actions) != 1 || rep.Actions[0].Status != types.StatusSkipped || !strings.Contains(rep.Actions[0].Error, "fight-loop breaker") {
			t.Fatalf("%s: actions %+v; want the fix held", what, rep.Actions)
		}
		var loop *report.Finding
		for i, f := range rep.Findings {
			if f.Rule == remediate.BreakerRule {
				loop = &rep.Findings[i]
			}
		}
		if loop == nil || loop.Severity != types.SeverityCritical || rep.Healthy || rep.ExitCode() != report.ExitFindings {
			t.Fatalf("%s: findings %+v, healthy %v; want a critical remediation_loop", what, rep.Findings, rep.Healthy)
		}
		var ev struct {
			Rule, Kind, Target string
			Applied            []json.RawMessage
		}
		if err := json.Unmarshal(loop.Evidence, &ev); err != nil || ev.Rule != "proxy_leak" || ev.Kind != "mark" || ev.Target != "/markers/a" || len(ev.Applied) != 4 {
			t.Errorf("%s: evidence %s (%v); want the rule, the fix and its 4 applications", what, loop.Evidence, err)
		}
		if data, _ := os.ReadFile(filepath.Join(root, "markers/a")); string(data) != "leak" {
			t.Errorf("%s: the held fix was applied", what)
		}
	}
	held(e, "the fifth time")
	restarted := *e
	held(&restarted, "after a restart")
	plan, err := e.Run(ctx, types.CommandPlan)
	if err != nil || len(plan.Actions) != 1 || plan.Actions[0].Status != types.StatusSkipped {
		t.Errorf("plan: %v, actions %+v; want the held fix shown skipped", err, plan.Actions)
	}

	released, err := e.ResetBreaker(ctx)
	if err != nil || len(released) != 1 || !strings.Contains(released[0], "/markers/a") {
		t.Fatalf("reset: %v, released %q", err, released)
	}
	if rep := apply(e); len(rep.Actions) != 1 || rep.Actions[0].Status != types.StatusApplied {
		t.Fatalf("after reset: actions %+v; want the fix applied again", rep.Actions)
	}
	for range 3 {
		apply(e)
	}
	held(e, "the fifth time after reset")

	changed := *e
	pol, diags := rules.Parse([]rules.Source{{Name: "policy.hcl", Data: []byte(flowPolicy + "\n# changed\n")}}, e.Registry)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	changed.Policy = pol
	if rep := apply(&changed); len(rep.Actions) != 1 || rep.Actions[0].Status != types.StatusApplied {
		t.Fatalf("with a changed policy: actions %+v; want the fix applied again", rep.Actions)
	}
}
