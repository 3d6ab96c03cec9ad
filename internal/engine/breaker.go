package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/remediate"
	"github.com/imdsmend/imdsmend/report"
)

// breaker loads the fight-loop breaker's history for the policy in force.
func (e *Engine) breaker() *remediate.Breaker {
	s := e.Policy.Settings.Breaker
	return remediate.LoadBreaker(e.Paths, s.Reapplies, s.Window, e.policyHash())
}

// policyHash identifies the policy's text, every file of it: a changed policy gets a new
// breaker history.
func (e *Engine) policyHash() string {
	names := make([]string, 0, len(e.Policy.Files))
	for name := range e.Policy.Files {
		names = append(names, name)
	}
	slices.Sort(names)
	h := sha256.New()
	for _, name := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(e.Policy.Files[name].Bytes))
		h.Write(e.Policy.Files[name].Bytes)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// ResetBreaker forgets the breaker's history under the run lock, so held fixes are applied
// again, and returns the fixes it held.
func (e *Engine) ResetBreaker(ctx context.Context) ([]string, error) {
	unlock, err := Lock(ctx, e.Paths.Lock())
	if err != nil {
		return nil, err
	}
	defer unlock()
	return remediate.ResetBreaker(e.Paths)
}

// loopEvidence is a remediation_loop finding's evidence.
type loopEvidence struct {
	Rule      string      `json:"rule"`
	Kind      string      `json:"kind"`
	Target    string      `json:"target"`
	ActionID  string      `json:"action_id"`
	Applied   []time.Time `json:"applied"`
	ReaddedBy string      `json:"readded_by,omitempty"`
}

// addLoops reports each held fix as a critical remediation_loop finding.
func addLoops(rep *report.Report, loops []remediate.Loop) {
	for _, l := range loops {
		c := l.Change
		ev, _ := json.Marshal(loopEvidence{Rule: c.Rule, Kind: c.Kind, Target: c.Target, ActionID: c.ID, Applied: l.Applied, ReaddedBy: l.ReaddedBy})
		who := "what re-adds it could not be told"
		if l.ReaddedBy != "" {
			who = l.ReaddedBy
		}
		rep.Findings = append(rep.Findings, report.Finding{
			Rule:     remediate.BreakerRule,
			Severity: types.SeverityCritical,
			Summary: fmt.Sprintf("Something keeps undoing the fix of %s: imdsmend stopped applying %s %s, which came back after each time (%s)",
				c.Rule, c.Kind, c.Target, who),
			Hint:     "Stop what re-adds it, then run `imdsmend reset` to apply the fix again.",
			Evidence: ev,
		})
		rep.Healthy = false
	}
}
