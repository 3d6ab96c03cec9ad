package remediate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/zclconf/go-cty/cty"
)

// fakeFixer "fixes" targets by marking them in a map. Its Apply checks that the
// executor recorded the intent in the ledger first.
type fakeFixer struct {
	t         *testing.T
	fixed     map[string]bool
	ledger    *Ledger
	planErr   error
	failApply map[string]bool
	noop      map[string]bool // already as wanted at apply time
	failUndo  map[string]bool
	applied   []string
}

func newFake(t *testing.T, l *Ledger) *fakeFixer {
	return &fakeFixer{t: t, fixed: map[string]bool{}, ledger: l, failApply: map[string]bool{}, noop: map[string]bool{}, failUndo: map[string]bool{}}
}

func (*fakeFixer) Kind() string                 { return "fake" }
func (*fakeFixer) Doc() string                  { return "marks targets fixed" }
func (*fakeFixer) Permission() types.Permission { return "files" }
func (*fakeFixer) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{"targets": &hcldec.AttrSpec{Name: "targets", Type: cty.List(cty.String), Required: true}}
}

func (f *fakeFixer) Plan(_ context.Context, _ *Env, args cty.Value) ([]*Change, error) {
	if f.planErr != nil {
		return nil, f.planErr
	}
	targets, err := stringList(args, "targets")
	if err != nil {
		return nil, err
	}
	var out []*Change
	for _, t := range targets {
		if !f.fixed[t] {
			out = append(out, &Change{Target: t, Detail: "fix " + t})
		}
	}
	return out, nil
}

func (f *fakeFixer) Apply(_ context.Context, _ *Env, c *Change) error {
	entries, err := f.ledger.Read()
	if err != nil {
		return err
	}
	if n := len(entries); n == 0 || entries[n-1].Phase != PhaseIntent || entries[n-1].Change.ID != c.ID {
		f.t.Errorf("Apply(%s) ran before its intent was in the ledger", c.Target)
	}
	switch {
	case f.failApply[c.Target]:
		return errors.New("device busy")
	case f.noop[c.Target]:
		c.Status = types.StatusUnchanged
		return nil
	}
	f.fixed[c.Target] = true
	f.applied = append(f.applied, c.Target)
	c.Data = []byte(`{"was":"broken"}`)
	return nil
}

func (f *fakeFixer) Undo(_ context.Context, _ *Env, c *Change) error {
	if string(c.Data) != `{"was":"broken"}` {
		return fmt.Errorf("undo without the applied record: %s", c.Data)
	}
	if f.failUndo[c.Target] {
		return errors.New("device busy")
	}
	if !f.fixed[c.Target] {
		return errors.New("not applied")
	}
	delete(f.fixed, c.Target)
	return nil
}

// Observe completes an intent's record, as real fixers do.
func (f *fakeFixer) Observe(_ context.Context, _ *Env, c *Change) (bool, error) {
	if f.fixed[c.Target] && len(c.Data) == 0 {
		c.Data = []byte(`{"was":"broken"}`)
	}
	return f.fixed[c.Target], nil
}

func targets(ts ...string) cty.Value {
	vals := make([]cty.Value, len(ts))
	for i, t := range ts {
		vals[i] = cty.StringVal(t)
	}
	return cty.ObjectVal(map[string]cty.Value{"targets": cty.ListVal(vals)})
}

func newExecutor(t *testing.T, run string, allow bool) (*Executor, *fakeFixer) {
	t.Helper()
	l := NewLedger(filepath.Join(t.TempDir(), "ledger.jsonl"))
	f := newFake(t, l)
	reg, err := NewRegistry(f)
	if err != nil {
		t.Fatal(err)
	}
	return &Executor{Registry: reg, Env: &Env{Allow: func(p types.Permission) bool { return allow && p == "files" }}, Ledger: l, RunID: run, Enforce: true}, f
}

// summary is "target status error" per change.
func summary(changes []*Change) []string {
	var out []string
	for _, c := range changes {
		out = append(out, strings.TrimSpace(c.Target+" "+string(c.Status)+" "+c.Error))
	}
	return out
}

func TestExecutorPlan(t *testing.T) {
	ctx := context.Background()
	x, f := newExecutor(t, "r1", true)
	got := x.Plan(ctx, "rule", "fake", targets("a", "b"))
	if diff := cmp.Diff([]string{"a planned", "b planned"}, summary(got)); diff != "" {
		t.Errorf("allowed (-want +got):\n%s", diff)
	}
	if got[0].ID != actionID("fake", "a") || got[0].Rule != "rule" || got[0].Kind != "fake" {
		t.Errorf("change = %+v", got[0])
	}
	// Plan and apply name a change alike: the ID depends on kind and target only.
	if again := x.Plan(ctx, "other", "fake", targets("a")); again[0].ID != got[0].ID {
		t.Errorf("ID changed between plans: %s, %s", got[0].ID, again[0].ID)
	}

	x.Env.Allow = func(types.Permission) bool { return false }
	want := `a skipped not allowed by the policy: set settings { allow { files = true } } to permit it`
	if diff := cmp.Diff([]string{want}, summary(x.Plan(ctx, "rule", "fake", targets("a")))); diff != "" {
		t.Errorf("not allowed (-want +got):\n%s", diff)
	}
	x.Env.Allow, x.Enforce = func(types.Permission) bool { return true }, false
	want = `a skipped settings.mode is "report": nothing is changed`
	if diff := cmp.Diff([]string{want}, summary(x.Plan(ctx, "rule", "fake", targets("a")))); diff != "" {
		t.Errorf("report mode (-want +got):\n%s", diff)
	}
	x.Enforce = true
	f.planErr = errors.New("cannot read /etc/x")
	if diff := cmp.Diff([]string{"failed plan: cannot read /etc/x"}, summary(x.Plan(ctx, "rule", "fake", targets("a")))); diff != "" {
		t.Errorf("plan error (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"failed unknown remediation kind nope"}, summary(x.Plan(ctx, "rule", "nope", targets("a")))); diff != "" {
		t.Errorf("unknown kind (-want +got):\n%s", diff)
	}
	if entries, _ := x.Ledger.Read(); len(entries) != 0 {
		t.Errorf("planning wrote %d ledger entries", len(entries))
	}
}

func TestExecutorApply(t *testing.T) {
	ctx := context.Background()
	x, f := newExecutor(t, "r1", true)
	f.failApply["b"], f.noop["c"] = true, true
	changes := x.Plan(ctx, "rule", "fake", targets("a", "b", "c"))
	skipped := &Change{ID: "x", Kind: "fake", Target: "d", Status: types.StatusSkipped}
	changes = append(changes, skipped)
	x.Apply(ctx, changes)
	want := []string{"a applied", "b failed device busy", "c unchanged", "d skipped"}
	if diff := cmp.Diff(want, summary(changes)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	entries, err := x.Ledger.Read()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.RunID+" "+e.Phase+" "+e.Change.Target+" "+string(e.Change.Status))
	}
	want = []string{"r1 intent a planned", "r1 result a applied", "r1 intent b planned", "r1 result b failed", "r1 intent c planned", "r1 result c unchanged"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ledger (-want +got):\n%s", diff)
	}
	if string(entries[1].Change.Data) != `{"was":"broken"}` {
		t.Errorf("the result does not carry the fixer's undo record: %s", entries[1].Change.Data)
	}
}

func TestExecutorApplyWithoutLedger(t *testing.T) {
	ctx := context.Background()
	x, f := newExecutor(t, "r1", true)
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	x.Ledger = NewLedger(filepath.Join(blocker, "ledger.jsonl"))
	changes := x.Plan(ctx, "rule", "fake", targets("a"))
	x.Apply(ctx, changes)
	if changes[0].Status != types.StatusFailed || !strings.Contains(changes[0].Error, "create state directory") || len(f.applied) != 0 {
		t.Errorf("change %+v, applied %v; an unrecorded change must not be made", changes[0], f.applied)
	}
}

func TestExecutorUndo(t *testing.T) {
	ctx := context.Background()
	x, f := newExecutor(t, "r1", true)
	apply := func(run string, ts ...string) []*Change {
		x.RunID = run
		changes := x.Plan(ctx, "rule", "fake", targets(ts...))
		x.Apply(ctx, changes)
		return changes
	}
	undoable := func(last bool, ids ...string) ([]string, error) {
		cs, err := x.Undoable(last, ids)
		var out []string
		for _, c := range cs {
			out = append(out, c.Target)
		}
		return out, err
	}
	if got, err := undoable(true); err != nil || got != nil {
		t.Errorf("empty ledger: %v, %v", got, err)
	}
	apply("r1", "a", "b")
	f.noop["c"] = true
	apply("r2", "c") // changed nothing
	// --last skips r2, which applied nothing, and reverts r1 newest first.
	got, err := undoable(true)
	if err != nil || !slices.Equal(got, []string{"b", "a"}) {
		t.Fatalf("undo --last = %v, %v; want [b a]", got, err)
	}
	cs, _ := x.Undoable(true, nil)
	x.RunID = "u1"
	x.Undo(ctx, cs)
	if diff := cmp.Diff([]string{"b reverted", "a reverted"}, summary(cs)); diff != "" {
		t.Errorf("undo (-want +got):\n%s", diff)
	}
	if len(f.fixed) != 0 {
		t.Errorf("still fixed after undo: %v", f.fixed)
	}
	if got, err := undoable(true); err != nil || got != nil {
		t.Errorf("undo --last after everything was reverted = %v, %v", got, err)
	}
	// Reverting an already reverted change is an error that says where to look.
	_, err = undoable(false, actionID("fake", "a"))
	if err == nil || !strings.Contains(err.Error(), "no applied, unreverted change with ID "+actionID("fake", "a")) {
		t.Errorf("undo of a reverted change = %v", err)
	}

	apply("r3", "a", "d")
	got, err = undoable(false, actionID("fake", "d"))
	if err != nil || !slices.Equal(got, []string{"d"}) {
		t.Errorf("undo by ID = %v, %v; want [d]", got, err)
	}
	// Named twice, or oldest first: each once, newest first.
	got, err = undoable(false, actionID("fake", "a"), actionID("fake", "d"), actionID("fake", "a"))
	if err != nil || !slices.Equal(got, []string{"d", "a"}) {
		t.Errorf("undo by repeated IDs = %v, %v; want [d a]", got, err)
	}
	// An undo that fails leaves the change undoable.
	f.failUndo["d"] = true
	cs, _ = x.Undoable(false, []string{actionID("fake", "d")})
	x.Undo(ctx, cs)
	// Its next step fits undo.
	want := "d failed undo: device busy. The change stays recorded: once that is dealt with, run `imdsmend undo " + actionID("fake", "d") + "` again"
	if diff := cmp.Diff([]string{want}, summary(cs)); diff != "" {
		t.Errorf("failed undo (-want +got):\n%s", diff)
	}
	if got, err = undoable(true); err != nil || !slices.Equal(got, []string{"d", "a"}) {
		t.Errorf("undo --last after a failed undo = %v, %v; want [d a]", got, err)
	}
	// Undo is a change too: report mode and a withdrawn permission skip it, and the
	// change stays revertible.
	f.failUndo["d"] = false
	for _, deny := range []func(){
		func() { x.Enforce = false },
		func() { x.Env.Allow = func(types.Permission) bool { return false } },
	} {
		enforce, allow := x.Enforce, x.Env.Allow
		deny()
		cs, _ = x.Undoable(false, []string{actionID("fake", "d")})
		x.Undo(ctx, cs)
		if len(cs) != 1 || cs[0].Status != types.StatusSkipped || !f.fixed["d"] {
			t.Errorf("denied undo = %v, fixed %v; want skipped and still fixed", summary(cs), f.fixed)
		}
		x.Enforce, x.Env.Allow = enforce, allow
	}
	if got, err = undoable(true); err != nil || !slices.Equal(got, []string{"d", "a"}) {
		t.Errorf("undo --last after denied undos = %v, %v; want [d a]", got, err)
	}
	// A ledger damaged in the middle stops undo with the line to look at.
	if err := os.WriteFile(x.Ledger.Path(), []byte("{}\nnot json\n{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := undoable(true); err == nil || !strings.Contains(err.Error(), ":2: corrupt ledger entry") {
		t.Errorf("undo with a corrupt ledger = %v", err)
	}
}

// crashed stands for the process dying: the test's crash hook panics with it.
type crashed struct{}

// runUntilCrash runs fn, which must stop at the executor's crash hook, as kill -9 would
// stop the process between a change and its result record.
func runUntilCrash(t *testing.T, x *Executor, fn func()) {
	t.Helper()
	x.crash = func(*Change) { panic(crashed{}) }
	defer func() {
		x.crash = nil
		if r := recover(); r != (crashed{}) {
			t.Fatalf("the run did not stop at the crash hook (recovered %v)", r)
		}
	}()
	fn()
}

// TestExecutorReconcilesCrash: a run killed between a change and its result leaves an
// intent without a result. The next run looks at the system, records what is true, reports
// it, and keeps an applied change undoable; a killed undo is settled the same way and a
// retried undo does not revert twice.
func TestExecutorReconcilesCrash(t *testing.T) {
	ctx := context.Background()
	x, f := newExecutor(t, "r1", true)
	f.noop["b"] = true // its Apply changes nothing
	changes := x.Plan(ctx, "rule", "fake", targets("a", "b"))
	runUntilCrash(t, x, func() { x.Apply(ctx, changes[:1]) })
	runUntilCrash(t, x, func() { x.Apply(ctx, changes[1:]) })
	if p, _ := x.Pending(); len(p) != 0 {
		t.Fatalf("pending before reconciling = %v", p)
	}

	x.RunID = "r2"
	settled, err := x.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a applied", "b not_applied"}, summary(settled)); diff != "" {
		t.Errorf("settled (-want +got):\n%s", diff)
	}
	for _, c := range settled {
		if c.Interrupted != "r1" {
			t.Errorf("%s: Interrupted = %q, want r1", c.Target, c.Interrupted)
		}
	}
	if again, err := x.Reconcile(ctx); err != nil || len(again) != 0 {
		t.Errorf("second Reconcile = %v, %v; want nothing left to settle", summary(again), err)
	}
	cs, err := x.Undoable(false, []string{actionID("fake", "a")})
	if err != nil || len(cs) != 1 {
		t.Fatalf("the settled change is not undoable: %v, %v", cs, err)
	}

	// An undo killed after reverting: the next run records it reverted.
	x.RunID = "u1"
	runUntilCrash(t, x, func() { x.Undo(ctx, cs) })
	x.RunID = "r3"
	settled, err = x.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a reverted"}, summary(settled)); diff != "" {
		t.Errorf("settled undo (-want +got):\n%s", diff)
	}
	if p, _ := x.Pending(); len(p) != 0 {
		t.Errorf("pending after the settled undo = %v", p)
	}
}

// TestExecutorUndoRetryAfterCrash: an undo retried after a crash (before anything
// reconciled it) finds the change already reverted and does not revert it again.
func TestExecutorUndoRetryAfterCrash(t *testing.T) {
	ctx := context.Background()
	x, f := newExecutor(t, "r1", true)
	x.Apply(ctx, x.Plan(ctx, "rule", "fake", targets("a")))
	cs, _ := x.Undoable(true, nil)
	x.RunID = "u1"
	runUntilCrash(t, x, func() { x.Undo(ctx, cs) })
	cs, _ = x.Undoable(true, nil)
	x.RunID = "u2"
	x.Undo(ctx, cs)
	if diff := cmp.Diff([]string{"a reverted"}, summary(cs)); diff != "" || cs[0].Detail != "already reverted: nothing to do" {
		t.Errorf("retried undo (-want +got):\n%s detail %q", diff, cs[0].Detail)
	}
	if len(f.fixed) != 0 {
		t.Errorf("fixed = %v", f.fixed)
	}
}

// TestExecutorFullDisk: a result that can't be written (the disk filled up after the
// intent) is said in the report, and the next run records the change as applied.
func TestExecutorFullDisk(t *testing.T) {
	ctx := context.Background()
	x, _ := newExecutor(t, "r1", true)
	changes := x.Plan(ctx, "rule", "fake", targets("a"))
	path := x.Ledger.Path()
	x.crash = func(*Change) {
		// The ledger can't be appended to: a directory stands where it was.
		if err := os.Rename(path, path+".full"); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	x.Apply(ctx, changes)
	x.crash = nil
	if changes[0].Status != types.StatusApplied || !strings.Contains(changes[0].Error, "the next run checks the system and records the outcome") {
		t.Errorf("change = %s %q; want applied, saying the next run records it", changes[0].Status, changes[0].Error)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".full", path); err != nil {
		t.Fatal(err)
	}
	x.RunID = "r2"
	settled, err := x.Reconcile(ctx)
	if err != nil || len(settled) != 1 || settled[0].Status != types.StatusApplied {
		t.Fatalf("Reconcile = %v, %v; want a applied", summary(settled), err)
	}
	if p, _ := x.Pending(); len(p) != 1 || p[0].RunID != "r1" {
		t.Errorf("pending = %v; want the change of r1", p)
	}
}

// TestOpenIntents: a result settles the oldest open intent of its run and ID, so the same
// change made twice in a run (and an undo) pairs up right.
func TestOpenIntents(t *testing.T) {
	entries := []Entry{
		entry("r1", PhaseIntent, "a", types.StatusPlanned),
		entry("r1", PhaseResult, "a", types.StatusApplied),
		entry("r1", PhaseIntent, "a", types.StatusPlanned),
		entry("r2", PhaseIntent, "a", types.StatusPlanned),
		entry("r2", PhaseResult, "a", types.StatusApplied),
		entry("u1", PhaseUndoIntent, "a", types.StatusApplied),
		entry("u2", PhaseUndoIntent, "b", types.StatusApplied),
		entry("u2", PhaseUndoResult, "b", types.StatusReverted),
	}
	var got []string
	for _, e := range openIntents(entries) {
		got = append(got, e.RunID+" "+e.Phase)
	}
	if diff := cmp.Diff([]string{"r1 intent", "u1 undo_intent"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Many open intents come back in ledger order, whatever order the map gives them in.
	entries, want := nil, []string(nil)
	for i := range 32 {
		id := fmt.Sprintf("c%02d", i)
		entries = append(entries, entry("r3", PhaseIntent, id, types.StatusPlanned))
		want = append(want, id)
	}
	got = nil
	for _, e := range openIntents(entries) {
		got = append(got, e.Change.ID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

// TestExecutorUndoOnceAcrossRuns: an action ID applied in two runs (reverted by hand in
// between, applied again) is reverted once by `undo ID`, and nothing stays pending.
func TestExecutorUndoOnceAcrossRuns(t *testing.T) {
	ctx := context.Background()
	x, f := newExecutor(t, "r1", true)
	x.Apply(ctx, x.Plan(ctx, "rule", "fake", targets("a")))
	delete(f.fixed, "a") // reverted by hand
	x.RunID = "r2"
	x.Apply(ctx, x.Plan(ctx, "rule", "fake", targets("a")))
	cs, err := x.Undoable(false, []string{actionID("fake", "a")})
	if err != nil || len(cs) != 1 {
		t.Fatalf("undoable = %v, %v; want the one change", summary(cs), err)
	}
	x.RunID = "u1"
	x.Undo(ctx, cs)
	if diff := cmp.Diff([]string{"a reverted"}, summary(cs)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if p, _ := x.Pending(); len(p) != 0 {
		t.Errorf("pending after undo = %v; want nothing", p)
	}
}
