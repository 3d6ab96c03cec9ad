package remediate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/zclconf/go-cty/cty"
)

// Executor plans, applies and undoes changes, writing each to the ledger.
type Executor struct {
	Registry *Registry
	Env      *Env
	Ledger   *Ledger
	RunID    string
	// Enforce is false in report mode: nothing is ever applied.
	Enforce bool
}

// Plan asks the fixer of kind for the changes that args call for. Changes the policy does
// not allow are returned as skipped, with the reason, so plan shows them too.
func (x *Executor) Plan(ctx context.Context, rule, kind string, args cty.Value) []*Change {
	f, ok := x.Registry.Get(kind)
	if !ok {
		return []*Change{{Rule: rule, Kind: kind, Status: StatusFailed, Error: "unknown remediation kind " + kind}}
	}
	changes, err := f.Plan(ctx, x.Env, args)
	if err != nil {
		return []*Change{{ID: actionID(kind, rule), Rule: rule, Kind: kind, Status: StatusFailed, Error: fmt.Sprintf("plan: %v", err)}}
	}
	allowed := x.Env.Allow != nil && x.Env.Allow(f.Permission())
	for _, c := range changes {
		c.Rule, c.Kind = rule, kind
		c.ID = actionID(kind, c.Target)
		switch {
		case c.Status == StatusFailed:
			// The fixer could not plan this one (it says why); the others go ahead.
		case !x.Enforce:
			c.Status = StatusSkipped
			c.Error = "settings.mode is \"report\": nothing is changed"
		case !allowed:
			c.Status = StatusSkipped
			c.Error = fmt.Sprintf("not allowed by the policy: set settings { allow { %s = true } } to permit it", f.Permission())
		default:
			c.Status = StatusPlanned
		}
	}
	return changes
}

// actionID is stable for the same change, so plan and apply name it alike.
func actionID(kind, target string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + target))
	return kind + "-" + hex.EncodeToString(sum[:])[:10]
}

// Apply makes every planned change, recording intent before and result after each.
// A change whose intent can't be recorded is not made.
func (x *Executor) Apply(ctx context.Context, changes []*Change) {
	for _, c := range changes {
		if c.Status != StatusPlanned {
			continue
		}
		f, _ := x.Registry.Get(c.Kind)
		if err := x.record(PhaseIntent, c); err != nil {
			c.Status, c.Error = StatusFailed, err.Error()
			continue
		}
		if err := f.Apply(ctx, x.Env, c); err != nil {
			c.Status, c.Error = StatusFailed, err.Error()
		} else if c.Status == StatusPlanned {
			c.Status = StatusApplied
		}
		if err := x.record(PhaseResult, c); err != nil && c.Error == "" {
			c.Error = err.Error()
		}
	}
}

func (x *Executor) record(phase string, c *Change) error {
	return x.Ledger.Append(Entry{Time: time.Now().UTC(), RunID: x.RunID, Phase: phase, Change: *c})
}

// Undoable returns the applied changes not yet reverted: with last, those of the most
// recent run that applied any; otherwise those with the given IDs (latest record each).
func (x *Executor) Undoable(last bool, ids []string) ([]*Change, error) {
	entries, err := x.Ledger.Read()
	if err != nil {
		return nil, err
	}
	type key struct{ run, id string }
	applied := map[key]*Change{}
	var order []key
	for _, e := range entries {
		k := key{e.RunID, e.Change.ID}
		switch {
		case e.Phase == PhaseResult && e.Change.Status == StatusApplied:
			c := e.Change
			if _, seen := applied[k]; !seen {
				order = append(order, k)
			}
			applied[k] = &c
		case e.Phase == PhaseUndoResult && e.Change.Status == StatusReverted:
			// An undo reverts the change in whichever run applied it.
			for _, ok := range order {
				if ok.id == e.Change.ID {
					delete(applied, ok)
				}
			}
		}
	}
	var out []*Change
	switch {
	case last:
		lastRun := ""
		for _, k := range order {
			if applied[k] != nil {
				lastRun = k.run
			}
		}
		for _, k := range order {
			if c := applied[k]; c != nil && k.run == lastRun {
				out = append(out, c)
			}
		}
	default:
		for _, id := range ids {
			var found *Change
			for _, k := range order {
				if c := applied[k]; c != nil && k.id == id {
					found = c
				}
			}
			if found == nil {
				return nil, fmt.Errorf("no applied, unreverted change with ID %s in %s (see `imdsmend undo --list`)", id, x.Ledger.Path())
			}
			out = append(out, found)
		}
	}
	slices.Reverse(out)
	return out, nil
}

// Undo reverts changes in the order given, recording intent and result of each.
func (x *Executor) Undo(ctx context.Context, changes []*Change) {
	for _, c := range changes {
		f, ok := x.Registry.Get(c.Kind)
		if !ok {
			c.Status, c.Error = StatusFailed, "unknown remediation kind "+c.Kind
			continue
		}
		if err := x.record(PhaseUndoIntent, c); err != nil {
			c.Status, c.Error = StatusFailed, err.Error()
			continue
		}
		if err := f.Undo(ctx, x.Env, c); err != nil {
			c.Status, c.Error = StatusFailed, fmt.Sprintf("undo: %v", err)
		} else {
			c.Status, c.Error = StatusReverted, ""
		}
		if err := x.record(PhaseUndoResult, c); err != nil && c.Error == "" {
			c.Error = err.Error()
		}
	}
}
