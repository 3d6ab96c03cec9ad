package remediate

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/internal/types"
)

// TestFirewallDeleteCrash: a run killed after deleting the rules but before recording the
// result leaves them deleted and recorded nowhere; the next run finds them gone, records
// the change applied with where they were, and undo puts them back.
func TestFirewallDeleteCrash(t *testing.T) {
	const drop = "-A OUTPUT -d 169.254.169.254/32 -j DROP"
	const other = "-A OUTPUT -d 10.0.0.0/8 -j ACCEPT"
	all := []string{other, drop, other, drop, drop}
	// Two of the three copies are named: one stays.
	body := `rules = [
		{backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", spec = "-d 169.254.169.254/32 -j DROP"},
		{backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", spec = "-d 169.254.169.254/32 -j DROP"},
	]`
	for _, tt := range []struct {
		name      string
		failAfter int
		status    types.Status
		after     []string
	}{
		{"deleted, then killed", -1, types.StatusApplied, []string{other, other, drop}},
		{"the deletion failed, then killed", 0, types.StatusNotApplied, all},
	} {
		t.Run(tt.name, func(t *testing.T) {
			chain, _ := fakeIptables(t, all, tt.failAfter)
			ctx := context.Background()
			x := &Executor{Registry: Builtin(Deps{}), Env: &Env{Allow: func(types.Permission) bool { return true }},
				Ledger: NewLedger(filepath.Join(t.TempDir(), "ledger.jsonl")), RunID: "r1", Enforce: true}
			changes := x.Plan(ctx, "firewall_blocks_imds", "firewall_delete", decodeArgs(t, FirewallDelete{}.Spec(), body))
			runUntilCrash(t, x, func() { x.Apply(ctx, changes) })
			if diff := cmp.Diff(tt.after, chain()); diff != "" {
				t.Fatalf("chain after the killed run (-want +got):\n%s", diff)
			}
			x.RunID = "r2"
			settled, err := x.Reconcile(ctx)
			if err != nil || len(settled) != 1 || settled[0].Status != tt.status {
				t.Fatalf("Reconcile = %v, %v; want %s", summary(settled), err, tt.status)
			}
			pending, err := x.Undoable(true, nil)
			if err != nil {
				t.Fatal(err)
			}
			x.RunID = "u1"
			x.Undo(ctx, pending)
			if diff := cmp.Diff(all, chain()); diff != "" {
				t.Errorf("chain after undo (-want +got):\n%s", diff)
			}
			// Undone again (a retry): nothing is put back twice.
			x.RunID = "u2"
			x.Undo(ctx, pending)
			if diff := cmp.Diff(all, chain()); diff != "" {
				t.Errorf("chain after a second undo (-want +got):\n%s", diff)
			}
		})
	}
}
