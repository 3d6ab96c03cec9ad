package remediate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/tests/tree"
)

// noProxyExecutor is an executor over a tree holding /etc/environment with a proxy.
func noProxyExecutor(t *testing.T) (*Executor, string, []*Change) {
	t.Helper()
	root := t.TempDir()
	tree.Write(t, root, map[string]string{"etc/environment": "http_proxy=http://p\n"})
	env := testEnv(root, false)
	x := &Executor{Registry: Builtin(Deps{}), Env: env, Ledger: NewLedgerIn(env.Paths, "/var/lib/imdsmend/ledger.jsonl"), RunID: "r1", Enforce: true}
	changes := x.Plan(context.Background(), "proxy_leak", KindNoProxy, filesArg("/etc/environment"))
	if len(changes) != 1 || changes[0].Status != types.StatusPlanned {
		t.Fatalf("plan = %v", summary(changes))
	}
	return x, root, changes
}

// TestNoProxyCrash: a run killed after editing the file but before recording the result
// leaves an orphan backup; the next run finds the edit, records it applied with its
// backup, and undo restores the original.
func TestNoProxyCrash(t *testing.T) {
	ctx := context.Background()
	x, root, changes := noProxyExecutor(t)
	runUntilCrash(t, x, func() { x.Apply(ctx, changes) })
	x.RunID = "r2"
	settled, err := x.Reconcile(ctx)
	if err != nil || len(settled) != 1 || settled[0].Status != types.StatusApplied {
		t.Fatalf("Reconcile = %v, %v; want applied", summary(settled), err)
	}
	pending, _ := x.Undoable(true, nil)
	x.RunID = "u1"
	x.Undo(ctx, pending)
	if len(pending) != 1 || pending[0].Status != types.StatusReverted {
		t.Errorf("undo = %v", summary(pending))
	}
	if got, _ := os.ReadFile(filepath.Join(root, "etc/environment")); string(got) != "http_proxy=http://p\n" {
		t.Errorf("after undo: %q; want the original", got)
	}
}

// TestNoProxyUndoRefuses: undo through the executor refuses a backup whose bytes were
// changed, and a file whose link now leads elsewhere; neither file is written.
func TestNoProxyUndoRefuses(t *testing.T) {
	for _, tt := range []struct {
		name, want string
		tamper     func(t *testing.T, root, backup string)
	}{
		{"tampered backup", "does not hold the original", func(t *testing.T, root, backup string) {
			if err := os.WriteFile(backup, []byte("http_proxy=http://evil\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"retargeted link", "now leads to /etc/other", func(t *testing.T, root, _ string) {
			env := filepath.Join(root, "etc/environment")
			data, err := os.ReadFile(env)
			if err != nil {
				t.Fatal(err)
			}
			tree.Write(t, root, map[string]string{"etc/other": string(data)})
			if err := os.Remove(env); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/etc/other", env); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			x, root, changes := noProxyExecutor(t)
			x.Apply(ctx, changes)
			backups, _ := filepath.Glob(filepath.Join(root, "var/lib/imdsmend/backups/*"))
			if len(backups) != 1 {
				t.Fatalf("backups = %v", backups)
			}
			tt.tamper(t, root, backups[0])
			before, _ := os.ReadFile(filepath.Join(root, "etc/environment"))
			pending, _ := x.Undoable(true, nil)
			x.RunID = "u1"
			x.Undo(ctx, pending)
			if len(pending) != 1 || pending[0].Status != types.StatusFailed || !strings.Contains(pending[0].Error, tt.want) {
				t.Errorf("undo = %v; want failed, saying %q", summary(pending), tt.want)
			}
			if after, _ := os.ReadFile(filepath.Join(root, "etc/environment")); string(after) != string(before) {
				t.Errorf("undo wrote %q", after)
			}
		})
	}
}
