package remediate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLedgerAppendRedacts checks the ledger writes a change's detail and error redacted,
// and its Data (what undo needs) byte for byte.
func TestLedgerAppendRedacts(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ledger.jsonl")
	l := NewLedger(p)
	data := json.RawMessage(`{"path":"/etc/environment","sha256":"ab12","backup":"/var/lib/imdsmend/backup/x"}`)
	c := Change{
		ID: "no_proxy-1", Kind: "no_proxy", Status: StatusFailed, Data: data,
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
