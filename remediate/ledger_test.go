package remediate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/internal/types"
)

func entry(run, phase, id string, status types.Status) Entry {
	return Entry{Time: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), RunID: run, Phase: phase,
		Change: Change{ID: id, Kind: "fake", Target: id, Status: status}}
}

func TestLedgerRoundTrip(t *testing.T) {
	l := NewLedger(filepath.Join(t.TempDir(), "state", "ledger.jsonl"))
	if got, err := l.Read(); err != nil || got != nil {
		t.Fatalf("Read of a missing ledger = %v, %v; want nothing", got, err)
	}
	want := []Entry{entry("r1", PhaseIntent, "a", types.StatusPlanned), entry("r1", PhaseResult, "a", types.StatusApplied)}
	for _, e := range want {
		if err := l.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := l.Read()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if st, err := os.Stat(l.Path()); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("ledger mode = %v, %v; want 0600", st.Mode(), err)
	}
}

func TestLedgerDamage(t *testing.T) {
	good := `{"time":"2026-11-27T12:00:00Z","run_id":"r1","phase":"intent","change":{"id":"a","rule":"","kind":"fake","target":"a","detail":"","status":"planned"}}`
	tests := []struct {
		name    string
		content string
		entries int
		err     string
	}{
		{"torn last line (crash mid-write)", good + "\n" + good[:40], 1, ""},
		{"corrupt line in the middle", good + "\n{not json\n" + good + "\n", 0, ":2: corrupt ledger entry"},
		{"blank line in the middle", good + "\n\n" + good + "\n", 0, ":2: corrupt ledger entry"},
		{"line beyond the scanner's limit", good + "\n" + strings.Repeat("x", 16<<20+1) + "\n", 0, "token too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "ledger.jsonl")
			if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := NewLedger(p).Read()
			if tt.err != "" {
				if err == nil || !strings.HasSuffix(err.Error(), tt.err) || !strings.Contains(err.Error(), p) {
					t.Errorf("Read = %v, want an error ending in %q naming the file", err, tt.err)
				}
				return
			}
			if err != nil || len(got) != tt.entries {
				t.Errorf("Read = %d entries, %v; want %d", len(got), err, tt.entries)
			}
		})
	}
}

// An entry appended after a torn line must not be glued to it.
func TestLedgerAppendAfterTornLine(t *testing.T) {
	for _, torn := range []string{`{"time":"2026-11-27T12:00:00Z","run_id":"r1","pha`, strings.Repeat("x", 10000)} {
		p := filepath.Join(t.TempDir(), "ledger.jsonl")
		l := NewLedger(p)
		first := entry("r1", PhaseIntent, "a", types.StatusPlanned)
		if err := l.Append(first); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(torn); err != nil {
			t.Fatal(err)
		}
		f.Close()
		next := entry("r2", PhaseIntent, "b", types.StatusPlanned)
		if err := l.Append(next); err != nil {
			t.Fatal(err)
		}
		got, err := l.Read()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]Entry{first, next}, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	}
	// A ledger that is one torn line only.
	p := filepath.Join(t.TempDir(), "ledger.jsonl")
	if err := os.WriteFile(p, []byte(`{"time":`), 0o600); err != nil {
		t.Fatal(err)
	}
	l := NewLedger(p)
	if err := l.Append(entry("r1", PhaseIntent, "a", types.StatusPlanned)); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Read(); err != nil || len(got) != 1 {
		t.Errorf("Read = %v, %v; want the one new entry", got, err)
	}
}

func TestLedgerAppendFails(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "state")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := NewLedger(filepath.Join(blocker, "ledger.jsonl")).Append(entry("r", PhaseIntent, "a", types.StatusPlanned))
	if err == nil || !strings.Contains(err.Error(), "create state directory") {
		t.Errorf("Append under a file = %v, want an error", err)
	}
}

// A whole entry that only lost its newline (a crash between the write and the newline, a
// full disk) may be the result of a change that was made: the next append keeps it.
func TestLedgerKeepsWholeLastLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ledger.jsonl")
	l := NewLedger(p)
	want := []Entry{entry("r1", PhaseIntent, "a", types.StatusPlanned), entry("r1", PhaseResult, "a", types.StatusApplied), entry("r2", PhaseIntent, "b", types.StatusPlanned)}
	for i, e := range want {
		if i == 2 {
			// The result lost its newline.
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data[:len(data)-1], 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := l.Read(); err != nil || !cmp.Equal(want, got) {
		t.Errorf("Read = %v, %v; want %v", got, err, want)
	}
}
