package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/imdsmend/imdsmend"
	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/facts/proxy"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/remediate"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/rules"
	"github.com/zclconf/go-cty/cty"
)

// The flow tests run the real engine, policy, executor and ledger over a fake probe and
// a fake fixer: files under ROOT/markers say "leak" or "fixed"; the probe reports the
// leaking ones as proxy sources and the fixer flips them.

const flowPolicy = `
settings {
  allow { files = true }
}

rule "proxy_leak" {
  when     = length([for s in facts.proxy.sources : s if s.leaks]) > 0
  severity = "critical"
  summary  = "leaking: ${join(", ", [for s in facts.proxy.sources : s.path if s.leaks])}"
  remediate "mark" {
    files = [for s in facts.proxy.sources : s.path if s.leaks]
  }
}
`

type markerProbe struct {
	root     string
	released *atomic.Bool // if set, gathering before it is true is an error
	t        *testing.T
}

func (markerProbe) Name() string { return "proxy" }

func (p markerProbe) Gather(_ context.Context, _ facts.Config, f *facts.Facts) error {
	if p.released != nil && !p.released.Load() {
		p.t.Error("an apply gathered facts while another run held the lock")
	}
	entries, err := os.ReadDir(filepath.Join(p.root, "markers"))
	if err != nil {
		return err
	}
	f.Proxy = &proxy.Proxy{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(p.root, "markers", e.Name()))
		if err != nil {
			return err
		}
		f.Proxy.Sources = append(f.Proxy.Sources, proxy.Source{Path: "/markers/" + e.Name(), Leaks: string(data) == "leak"})
	}
	return nil
}

type markFixer struct{}

func (markFixer) Kind() string                 { return "mark" }
func (markFixer) Doc() string                  { return "flips markers" }
func (markFixer) Permission() types.Permission { return types.PermFiles }
func (markFixer) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{"files": &hcldec.AttrSpec{Name: "files", Type: cty.List(cty.String), Required: true}}
}

func (markFixer) Plan(_ context.Context, env *remediate.Env, args cty.Value) ([]*remediate.Change, error) {
	var out []*remediate.Change
	for it := args.GetAttr("files").ElementIterator(); it.Next(); {
		_, v := it.Element()
		out = append(out, &remediate.Change{Target: v.AsString(), Detail: "mark " + v.AsString() + " fixed"})
	}
	return out, nil
}

func (markFixer) Apply(_ context.Context, env *remediate.Env, c *remediate.Change) error {
	return os.WriteFile(env.Paths.File(c.Target), []byte("fixed"), 0o644)
}

func (markFixer) Undo(_ context.Context, env *remediate.Env, c *remediate.Change) error {
	c.Detail = "mark " + c.Target + " leaking"
	return os.WriteFile(env.Paths.File(c.Target), []byte("leak"), 0o644)
}

func (markFixer) Observe(_ context.Context, env *remediate.Env, c *remediate.Change) (bool, error) {
	data, err := os.ReadFile(env.Paths.File(c.Target))
	return string(data) == "fixed", err
}

func newFlow(t *testing.T, markers map[string]string) (*Engine, string) {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "markers"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range markers {
		if err := os.WriteFile(filepath.Join(root, "markers", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reg, err := remediate.NewRegistry(markFixer{})
	if err != nil {
		t.Fatal(err)
	}
	pol, diags := rules.Parse([]rules.Source{{Name: "policy.hcl", Data: []byte(flowPolicy)}}, reg)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	p := paths.New(root)
	p.StateDir = "/state"
	return &Engine{Policy: pol, Registry: reg, Probes: []facts.Probe{markerProbe{root: root}}, Paths: p}, root
}

func actionSummary(rep *report.Report) []string {
	var out []string
	for _, a := range rep.Actions {
		out = append(out, a.Kind+" "+a.Target+" "+string(a.Status))
	}
	sort.Strings(out)
	return out
}

func ledgerLines(t *testing.T, e *Engine) []string {
	t.Helper()
	entries, err := e.Ledger().Read()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, en := range entries {
		out = append(out, en.Phase+" "+en.Change.Target+" "+string(en.Change.Status))
	}
	return out
}

func TestPlanApplyApplyUndo(t *testing.T) {
	ctx := context.Background()
	e, root := newFlow(t, map[string]string{"a": "leak", "b": "leak", "c": "fixed"})

	rep, err := e.Run(ctx, types.CommandPlan)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"mark /markers/a planned", "mark /markers/b planned"}, actionSummary(rep)); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
	if rep.ExitCode() != report.ExitFindings || len(ledgerLines(t, e)) != 0 {
		t.Errorf("plan: exit %d, ledger %v; want 2 and nothing recorded", rep.ExitCode(), ledgerLines(t, e))
	}
	if data, _ := os.ReadFile(filepath.Join(root, "markers/a")); string(data) != "leak" {
		t.Errorf("plan changed a marker")
	}

	rep, err = e.Run(ctx, types.CommandApply)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"mark /markers/a applied", "mark /markers/b applied"}, actionSummary(rep)); diff != "" {
		t.Errorf("apply (-want +got):\n%s", diff)
	}
	// The verdict comes from the facts after the fix.
	if !rep.Healthy || len(rep.Findings) != 0 || rep.ExitCode() != report.ExitHealthy {
		t.Errorf("apply: healthy %v, findings %+v", rep.Healthy, rep.Findings)
	}
	applied := ledgerLines(t, e)
	want := []string{"intent /markers/a planned", "result /markers/a applied", "intent /markers/b planned", "result /markers/b applied"}
	if diff := cmp.Diff(want, applied); diff != "" {
		t.Errorf("ledger (-want +got):\n%s", diff)
	}

	// A second apply changes nothing and records nothing.
	rep, err = e.Run(ctx, types.CommandApply)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Actions) != 0 || !rep.Healthy {
		t.Errorf("second apply: actions %v, healthy %v", actionSummary(rep), rep.Healthy)
	}
	if diff := cmp.Diff(applied, ledgerLines(t, e)); diff != "" {
		t.Errorf("second apply wrote to the ledger (-before +after):\n%s", diff)
	}

	// undo --last reverts both, newest first, and the finding is back.
	rep, err = e.Undo(ctx, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"mark /markers/b reverted", "mark /markers/a reverted"}, func() []string {
		var out []string
		for _, a := range rep.Actions {
			out = append(out, a.Kind+" "+a.Target+" "+string(a.Status))
		}
		return out
	}()); diff != "" {
		t.Errorf("undo (-want +got):\n%s", diff)
	}
	if rep.Healthy || len(rep.Findings) != 1 || !strings.Contains(rep.Findings[0].Summary, "/markers/a, /markers/b") {
		t.Errorf("after undo: healthy %v, findings %+v", rep.Healthy, rep.Findings)
	}
	if _, err := e.Undo(ctx, true, nil); err != nil {
		t.Errorf("undo --last with nothing left = %v", err)
	}
	id := rep.Actions[0].ID
	if _, err := e.Undo(ctx, false, []string{id}); err == nil || !strings.Contains(err.Error(), "no applied, unreverted change with ID "+id) {
		t.Errorf("undo of a reverted change = %v", err)
	}
}

func TestReportModeChangesNothing(t *testing.T) {
	e, root := newFlow(t, map[string]string{"a": "leak"})
	e.Policy.Settings.Mode = rules.ModeReport
	rep, err := e.Run(context.Background(), types.CommandApply)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"mark /markers/a skipped"}, actionSummary(rep)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if data, _ := os.ReadFile(filepath.Join(root, "markers/a")); string(data) != "leak" || len(ledgerLines(t, e)) != 0 {
		t.Errorf("report mode changed %q or recorded %v", data, ledgerLines(t, e))
	}
}

func TestApplyTakesTheLock(t *testing.T) {
	e, root := newFlow(t, map[string]string{"a": "leak"})
	released := &atomic.Bool{}
	e.Probes = []facts.Probe{markerProbe{root: root, released: released, t: t}}
	unlock, err := Lock(context.Background(), e.Paths.Lock())
	if err != nil {
		t.Fatal(err)
	}

	// Within its timeout, a second apply gives up without touching anything.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = e.Run(ctx, types.CommandApply)
	if err == nil || !strings.Contains(err.Error(), "another imdsmend run holds "+e.Paths.Lock()) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("apply under a held lock = %v", err)
	}

	// With time to spare it waits, and does its work only once the lock is free.
	done := make(chan error, 1)
	go func() {
		_, err := e.Run(context.Background(), types.CommandApply)
		done <- err
	}()
	released.Store(true)
	unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("apply did not finish after the lock was released")
	}
	if data, _ := os.ReadFile(filepath.Join(root, "markers/a")); string(data) != "fixed" {
		t.Errorf("marker = %q after the waiting apply", data)
	}
}

// TestNewChecksOnly: a misspelt --only is an error before anything runs, not a run that
// silently evaluates nothing.
func TestNewChecksOnly(t *testing.T) {
	tests := []struct {
		only    []string
		wantErr string
	}{
		{nil, ""},
		{[]string{"imds_unreachable", "proxy_leak"}, ""},
		{[]string{"imds_unreachabel"}, "imds_unreachabel"},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		_, diags := New(Options{PolicyFile: filepath.Join(dir, "absent.hcl"), BuiltinPolicy: imdsmend.DefaultPolicy, Only: tt.only})
		got := ""
		if diags.HasErrors() {
			got = diags.Error()
		}
		if (tt.wantErr == "") != (got == "") || !strings.Contains(got, tt.wantErr) {
			t.Errorf("New(only=%v) diagnostics %q, want one naming %q", tt.only, got, tt.wantErr)
		}
	}
}

// TestStatePathsResolveInRoot: under --root, a link in the state directory's path leads
// where it leads in that tree; followed on the host, the ledger would land outside it.
func TestStatePathsResolveInRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "var", "persist"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/var/persist", filepath.Join(root, "var", "lib")); err != nil {
		t.Fatal(err)
	}
	e, diags := New(Options{PolicyFile: "/etc/imdsmend/policy.hcl", BuiltinPolicy: imdsmend.DefaultPolicy, Root: root, StateDir: "/var/lib/imdsmend"})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got, want := e.Paths.Ledger(), filepath.Join(root, "var/persist/imdsmend/ledger.jsonl"); got != want {
		t.Errorf("ledger at %s, want %s", got, want)
	}
}

// TestRootConfinesLedgerAndPolicy: under --root, a ledger.jsonl or policy file that links
// to a host file (here a file outside the temporary root) is followed as the tree sees it:
// the ledger's repair never truncates the host file and the policy is not read from it.
// The run lock is the host's whatever --root says.
func TestRootConfinesLedgerAndPolicy(t *testing.T) {
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	const hostData = "host file without a newline"
	if err := os.WriteFile(victim, []byte(hostData), 0o600); err != nil {
		t.Fatal(err)
	}
	hostPolicy := filepath.Join(outside, "policy.hcl")
	if err := os.WriteFile(hostPolicy, []byte("this is not HCL {"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for link, target := range map[string]string{
		"var/lib/imdsmend/ledger.jsonl": victim,
		"etc/imdsmend/policy.hcl":       hostPolicy,
	} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(link)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, outside), 0o700); err != nil {
		t.Fatal(err)
	}
	e, diags := New(Options{PolicyFile: "/etc/imdsmend/policy.hcl", BuiltinPolicy: imdsmend.DefaultPolicy, Root: root, StateDir: "/var/lib/imdsmend"})
	if diags.HasErrors() {
		t.Fatalf("the policy was read through the link to the host: %v", diags)
	}
	if err := e.Ledger().Append(remediate.Entry{RunID: "r", Phase: remediate.PhaseIntent, Change: remediate.Change{ID: "a"}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(victim); string(got) != hostData {
		t.Errorf("the host file now holds %q; want it untouched", got)
	}
	if got, want := e.Paths.Lock(), paths.DefaultLockFile; got != want {
		t.Errorf("run lock %s under --root %s; want the host's %s", got, root, want)
	}
}
