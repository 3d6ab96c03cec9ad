package remediate

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/tests/tree"
)

// TestLedgerAppendRedacts checks the ledger writes a change's detail and error redacted,
// and its Data (what undo needs) byte for byte.
func TestLedgerAppendRedacts(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ledger.jsonl")
	l := NewLedger(p)
	data := json.RawMessage(`{"path":"/etc/environment","sha256":"ab12","backup":"/var/lib/imdsmend/backup/x"}`)
	c := Change{
		ID: "no_proxy-1", Kind: "no_proxy", Status: types.StatusFailed, Data: data,
		Detail: `+AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY proxy_password=hunter2pass`,
		Error:  `write failed near "proxy_password=hunter2pass"`,
	}
	if err := l.Append(Entry{RunID: "r", Phase: PhaseResult, Change: c}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY", "hunter2pass"} {
		if strings.Contains(string(raw), s) {
			t.Errorf("ledger holds the secret %q:\n%s", s, raw)
		}
	}
	got, err := l.Read()
	if err != nil || len(got) != 1 {
		t.Fatalf("Read = %v, %v", got, err)
	}
	if string(got[0].Change.Data) != string(data) {
		t.Errorf("Data = %s, want %s unchanged", got[0].Change.Data, data)
	}
	if !strings.Contains(got[0].Change.Detail, "AWS_SECRET_ACCESS_KEY=REDACTED") {
		t.Errorf("Detail = %q, want the key kept and its value masked", got[0].Change.Detail)
	}
}

// TestNoProxySecretsStayOutOfLedger: applying and undoing a no_proxy edit of a drop-in
// that holds an AWS secret key and a proxy password leaves neither in ledger.jsonl (nor in
// any change's Data), and undo still restores the file byte for byte from the backup.
func TestNoProxySecretsStayOutOfLedger(t *testing.T) {
	const dropIn = "/etc/systemd/system/docker.service.d/http-proxy.conf"
	secrets := []string{"wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY", "hunter2hunter2", "s3cr3tpass"}
	orig := "[Service]\nEnvironment=\"HTTP_PROXY=http://u:s3cr3tpass@proxy.corp:3128\" \"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY\" \"proxy_password=hunter2hunter2\"\n"
	root := t.TempDir()
	tree.Write(t, root, map[string]string{dropIn[1:]: orig})
	ledger := filepath.Join(t.TempDir(), "ledger.jsonl")
	x := &Executor{Registry: Builtin(Deps{}), Env: testEnv(root, false), Ledger: NewLedger(ledger), RunID: "r1", Enforce: true}
	ctx := context.Background()
	changes := x.Plan(ctx, "no_proxy_missing", "no_proxy", filesArg(dropIn))
	if len(changes) != 1 {
		t.Fatalf("planned %v", summary(changes))
	}
	x.Apply(ctx, changes)
	if changes[0].Status != types.StatusApplied {
		t.Fatalf("apply: %s %s", changes[0].Status, changes[0].Error)
	}
	pending, err := x.Undoable(true, nil)
	if err != nil || len(pending) != 1 {
		t.Fatalf("undoable %v, %v", summary(pending), err)
	}
	x.Undo(ctx, pending)
	if got, _ := os.ReadFile(filepath.Join(root, dropIn)); string(got) != orig {
		t.Errorf("undo left %q, want the original", got)
	}
	raw, err := os.ReadFile(ledger)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if strings.Contains(string(raw), s) {
			t.Errorf("ledger holds the secret %q:\n%s", s, raw)
		}
	}
}
