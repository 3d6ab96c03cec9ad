package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/imdsmend/imdsmend/report"
)

// TestRootConfinesWrites: a --root tree whose backups directory and ledger link to files
// outside it (here a directory outside the temporary root stands for the host) is changed
// only inside the tree: apply neither writes a backup outside nor truncates or appends to
// the linked ledger's target, and undo still restores the edited file.
func TestRootConfinesWrites(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	serveAEMM(ctx, t, ns)
	const env = "http_proxy=http://proxy.example:3128\n"
	tr := newProxyTree(t, ns, map[string]string{"etc/environment": env})
	outside := t.TempDir()
	hostLedger := filepath.Join(outside, "ledger")
	const hostData = "a host file without a final newline"
	if err := os.WriteFile(hostLedger, []byte(hostData), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(tr.path("state"), 0o700); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"state/backups": outside, "state/ledger.jsonl": hostLedger} {
		if err := os.Symlink(target, tr.path(link)); err != nil {
			t.Fatal(err)
		}
	}
	// What the links name, as the tree sees them.
	if err := os.MkdirAll(tr.path(outside), 0o700); err != nil {
		t.Fatal(err)
	}

	rep, res := tr.report(ctx, "apply")
	if res.ExitCode != report.ExitHealthy || len(actionsOf(rep, "no_proxy")) != 1 {
		t.Fatalf("apply: exit %d, actions %+v\n%s", res.ExitCode, rep.Actions, res.Stderr)
	}
	entries, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("files outside the root: %v; want only the untouched ledger", entries)
	}
	if got, _ := os.ReadFile(hostLedger); string(got) != hostData {
		t.Errorf("the linked ledger's target outside the root now holds %q", got)
	}

	rep, res = tr.report(ctx, "undo", "--last")
	if res.ExitCode != 0 || len(rep.Actions) != 1 || rep.Actions[0].Status != "reverted" {
		t.Errorf("undo: exit %d, actions %+v\n%s", res.ExitCode, rep.Actions, res.Stderr)
	}
	if got, _ := os.ReadFile(tr.path("etc/environment")); string(got) != env {
		t.Errorf("after undo /etc/environment holds %q", got)
	}
}
