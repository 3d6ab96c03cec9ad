package remediate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/imdsmend/imdsmend/internal/types"
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
	// crash, when set (by tests), runs between a change and its result record: a test
	// stops the run there, as kill -9 would.
	crash func(c *Change)
}

// Plan asks the fixer of kind for the changes that args call for. Changes the policy does
// not allow are returned as skipped, with the reason, so plan shows them too.
func (x *Executor) Plan(ctx context.Context, rule, kind string, args cty.Value) []*Change {
	f, ok := x.Registry.Get(kind)
	if !ok {
		return []*Change{{Rule: rule, Kind: kind, Status: types.StatusFailed, Error: "unknown remediation kind " + kind}}
	}
	changes, err := f.Plan(ctx, x.Env, args)
	if err != nil {
		return []*Change{{ID: actionID(kind, rule), Rule: rule, Kind: kind, Status: types.StatusFailed, Error: fmt.Sprintf("plan: %v", err)}}
	}
	denied := x.denied(f)
	for _, c := range changes {
		c.Rule, c.Kind = rule, kind
		c.ID = actionID(kind, c.Target)
		switch {
		case c.Status == types.StatusFailed || c.Status == types.StatusSkipped:
			// The fixer could not or would not plan this one (it says why); the others go ahead.
		case denied != "":
			c.Status, c.Error = types.StatusSkipped, denied
		default:
			c.Status = types.StatusPlanned
		}
	}
	return changes
}

// denied says why the policy forbids f's changes now, or "" when it allows them. Undo is
// a change too, so it obeys the same policy.
func (x *Executor) denied(f Fixer) string {
	switch {
	case !x.Enforce:
		return "settings.mode is \"report\": nothing is changed"
	case x.Env.Allow == nil || !x.Env.Allow(f.Permission()):
		return fmt.Sprintf("not allowed by the policy: set settings { allow { %s = true } } to permit it", f.Permission())
	}
	return ""
}

// actionID is stable for the same change, so plan and apply name it alike.
func actionID(kind, target string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + target))
	return kind + "-" + hex.EncodeToString(sum[:])[:10]
}

// Apply makes every planned change, recording intent before and result after each.
// A change whose intent can't be recorded is not made. One whose result can't be recorded
// (a full disk) is reconciled by the next run (Reconcile).
func (x *Executor) Apply(ctx context.Context, changes []*Change) {
	for _, c := range changes {
		if c.Status != types.StatusPlanned {
			continue
		}
		f, _ := x.Registry.Get(c.Kind)
		if s, ok := f.(Snapshotter); ok {
			if err := s.Snapshot(ctx, x.Env, c); err != nil {
				c.Status, c.Error = types.StatusFailed, fmt.Sprintf("nothing was changed: %v", err)
				continue
			}
		}
		if err := x.record(PhaseIntent, c); err != nil {
			c.Status, c.Error = types.StatusFailed, err.Error()
			continue
		}
		if err := f.Apply(ctx, x.Env, c); err != nil {
			c.Status, c.Error = types.StatusFailed, err.Error()
		} else if c.Status == types.StatusPlanned {
			c.Status = types.StatusApplied
		}
		if x.crash != nil {
			x.crash(c)
		}
		if err := x.record(PhaseResult, c); err != nil && c.Error == "" {
			c.Error = fmt.Sprintf("%v; the next run checks the system and records the outcome", err)
		}
	}
}

func (x *Executor) record(phase string, c *Change) error {
	return x.Ledger.Append(Entry{Time: time.Now().UTC(), RunID: x.RunID, Phase: phase, Change: *c})
}

// Reconcile settles every change an earlier run recorded the intent of but not the result
// (it was killed, or the disk was full): it asks the fixer whether the change is in effect
// and records what is true, so an applied change stays undoable. Changes undone in an
// interrupted undo are settled the same way. It returns the settled changes, with
// Interrupted set, for the report; one whose state can't be told stays open (failed, with
// the reason) and is tried again next run.
func (x *Executor) Reconcile(ctx context.Context) ([]*Change, error) {
	entries, err := x.Ledger.Read()
	if err != nil {
		return nil, err
	}
	var out []*Change
	for _, e := range openIntents(entries) {
		c := e.Change
		c.Interrupted = e.RunID
		out = append(out, &c)
		f, ok := x.Registry.Get(c.Kind)
		if !ok {
			c.Status, c.Error = types.StatusFailed, "unknown remediation kind "+c.Kind
			continue
		}
		applied, err := f.Observe(ctx, x.Env, &c)
		if err != nil {
			c.Status, c.Error = types.StatusFailed, fmt.Sprintf("run %s stopped before recording this change's outcome, and whether it was made can't be told: %v", e.RunID, err)
			continue
		}
		phase := PhaseResult
		c.Error = ""
		switch {
		case e.Phase == PhaseIntent && applied:
			c.Status = types.StatusApplied
		case e.Phase == PhaseIntent:
			c.Status = types.StatusNotApplied
		case applied:
			phase = PhaseUndoResult
			c.Status, c.Error = types.StatusFailed, fmt.Sprintf("run %s stopped while undoing this change, before it was reverted; it stays recorded: revert it with `imdsmend undo %s`", e.RunID, c.ID)
		default:
			phase = PhaseUndoResult
			c.Status = types.StatusReverted
		}
		if err := x.Ledger.Append(Entry{Time: time.Now().UTC(), RunID: e.RunID, Phase: phase, Change: c, ReconciledBy: x.RunID}); err != nil {
			c.Status, c.Error = types.StatusFailed, err.Error()
		}
	}
	return out, nil
}

// openIntents returns, in ledger order, the intents (and undo intents) without a result.
// A run makes its changes one after another, so a result settles the oldest open intent
// of its run and change ID.
func openIntents(entries []Entry) []Entry {
	type key struct{ run, id, phase string }
	open := map[key][]int{}
	settles := map[string]string{PhaseResult: PhaseIntent, PhaseUndoResult: PhaseUndoIntent}
	for i, e := range entries {
		switch e.Phase {
		case PhaseIntent, PhaseUndoIntent:
			k := key{e.RunID, e.Change.ID, e.Phase}
			open[k] = append(open[k], i)
		case PhaseResult, PhaseUndoResult:
			k := key{e.RunID, e.Change.ID, settles[e.Phase]}
			if len(open[k]) > 0 {
				open[k] = open[k][1:]
			}
		}
	}
	var idx []int
	for _, is := range open {
		idx = append(idx, is...)
	}
	slices.Sort(idx)
	out := make([]Entry, 0, len(idx))
	for _, i := range idx {
		out = append(out, entries[i])
	}
	return out
}

// Pending is an applied change not yet reverted, with the run that applied it.
type Pending struct {
	RunID  string
	Change *Change
}

// Pending lists the applied changes not yet reverted, oldest first.
func (x *Executor) Pending() ([]Pending, error) {
	entries, err := x.Ledger.Read()
	if err != nil {
		return nil, err
	}
	var out []Pending
	for _, e := range entries {
		switch {
		case e.Phase == PhaseResult && e.Change.Status == types.StatusApplied:
			c := e.Change
			out = append(out, Pending{RunID: e.RunID, Change: &c})
		case e.Phase == PhaseUndoResult && e.Change.Status == types.StatusReverted:
			// An undo reverts the change in whichever earlier run applied it.
			out = slices.DeleteFunc(out, func(p Pending) bool { return p.Change.ID == e.Change.ID })
		}
	}
	return out, nil
}

// Undoable returns, newest first, the pending changes to revert: with last, those of the
// most recent run that applied any; otherwise the latest pending change of each ID.
func (x *Executor) Undoable(last bool, ids []string) ([]*Change, error) {
	pending, err := x.Pending()
	if err != nil {
		return nil, err
	}
	var out []*Change
	switch {
	case last:
		if len(pending) > 0 {
			lastRun := pending[len(pending)-1].RunID
			for _, p := range pending {
				if p.RunID == lastRun {
					out = append(out, p.Change)
				}
			}
		}
	default:
		latest := map[string]int{} // ID → index in pending of its latest application
		for i, p := range pending {
			if slices.Contains(ids, p.Change.ID) {
				latest[p.Change.ID] = i
			}
		}
		for _, id := range ids {
			if _, ok := latest[id]; !ok {
				return nil, fmt.Errorf("no applied, unreverted change with ID %s in %s (see `imdsmend undo --list`)", id, x.Ledger.Path())
			}
		}
		// In ledger order, each once: an ID named twice must not be reverted twice.
		for i, p := range pending {
			if latest[p.Change.ID] == i && slices.Contains(ids, p.Change.ID) {
				out = append(out, p.Change)
			}
		}
	}
	slices.Reverse(out)
	return out, nil
}

// Undo reverts changes in the order given, recording intent and result of each. Changes
// the policy no longer allows are skipped, with the reason, and stay revertible.
func (x *Executor) Undo(ctx context.Context, changes []*Change) {
	for _, c := range changes {
		f, ok := x.Registry.Get(c.Kind)
		if !ok {
			c.Status, c.Error = types.StatusFailed, "unknown remediation kind "+c.Kind
			continue
		}
		if reason := x.denied(f); reason != "" {
			c.Status, c.Error = types.StatusSkipped, reason
			continue
		}
		if err := x.record(PhaseUndoIntent, c); err != nil {
			c.Status, c.Error = types.StatusFailed, err.Error()
			continue
		}
		// A change already reverted (by hand, or by an undo that stopped before recording
		// it) is not reverted twice: that would put a deleted rule back twice.
		if applied, err := f.Observe(ctx, x.Env, c); err == nil && !applied {
			c.Status, c.Error, c.Detail = types.StatusReverted, "", "already reverted: nothing to do"
		} else if err := f.Undo(ctx, x.Env, c); err != nil {
			c.Status, c.Error = types.StatusFailed, fmt.Sprintf("undo: %v. The change stays recorded: once that is dealt with, run `imdsmend undo %s` again", err, c.ID)
		} else {
			c.Status, c.Error = types.StatusReverted, ""
		}
		if x.crash != nil {
			x.crash(c)
		}
		if err := x.record(PhaseUndoResult, c); err != nil && c.Error == "" {
			c.Error = err.Error()
		}
	}
}
