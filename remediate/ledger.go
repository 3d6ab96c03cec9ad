package remediate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/internal/redact"
)

// Ledger phases: the intent is written before a change is made, the result after.
const (
	PhaseIntent     = "intent"
	PhaseResult     = "result"
	PhaseUndoIntent = "undo_intent"
	PhaseUndoResult = "undo_result"
)

// Entry is one line of ledger.jsonl.
type Entry struct {
	Time   time.Time `json:"time"`
	RunID  string    `json:"run_id"`
	Phase  string    `json:"phase"`
	Change Change    `json:"change"`
	// ReconciledBy is the run that wrote this result for an interrupted run (RunID).
	ReconciledBy string `json:"reconciled_by,omitempty"`
}

// Ledger is the append-only record of changes, the source of truth for undo.
type Ledger struct {
	paths paths.Paths
	abs   string // the ledger file as seen inside paths.Root
}

// NewLedger returns the ledger stored at path on this system.
func NewLedger(path string) *Ledger { return NewLedgerIn(paths.New("/"), path) }

// NewLedgerIn returns the ledger stored at abs inside p.Root: it is opened there, so no
// link in the tree can make a run write or truncate a file outside it.
func NewLedgerIn(p paths.Paths, abs string) *Ledger { return &Ledger{paths: p, abs: abs} }

// Path is where the ledger lives.
func (l *Ledger) Path() string { return l.paths.File(l.abs) }

// Append writes one entry and syncs it to disk before returning, so an intent is durable
// before the change it announces is made.
func (l *Ledger) Append(e Entry) error {
	if err := l.paths.MkdirAll(filepath.Dir(l.abs), 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	// Detail and Error are for people and may quote a file's secrets; Data keeps what undo
	// needs and must hold none (the exact bytes stay in the 0600 backup).
	e.Change.Detail, e.Change.Error = redact.String(e.Change.Detail), redact.String(e.Change.Error)
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode ledger entry: %w", err)
	}
	f, err := l.paths.OpenFile(l.abs, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open ledger %s: %w", l.Path(), err)
	}
	defer f.Close()
	if err := repairTail(f); err != nil {
		return fmt.Errorf("repair ledger %s: %w", l.Path(), err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("append to ledger %s: %w", l.Path(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync ledger %s: %w", l.Path(), err)
	}
	return nil
}

// repairTail ends a last line left without its newline by a crash (or a full disk)
// mid-write, so the next entry does not glue onto it. A complete entry that only lost its
// newline is kept: it may be the result of a change that was made. A torn one is cut: its
// Append never returned, and the next run reconciles the intent it leaves open.
func repairTail(f *os.File) error {
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return err
	}
	end := st.Size()
	buf := make([]byte, 4096)
	for pos := end; pos > 0; {
		n := min(int64(len(buf)), pos)
		pos -= n
		if _, err := f.ReadAt(buf[:n], pos); err != nil {
			return err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			if pos+int64(i)+1 == end {
				return nil
			}
			return endTail(f, pos+int64(i)+1, end)
		}
	}
	return endTail(f, 0, end)
}

// endTail keeps the last line, from start to end, if it is a whole entry, adding its
// newline, and cuts it otherwise.
func endTail(f *os.File, start, end int64) error {
	tail := make([]byte, end-start)
	if _, err := f.ReadAt(tail, start); err != nil {
		return err
	}
	var e Entry
	if json.Unmarshal(tail, &e) == nil {
		_, err := f.Write([]byte{'\n'})
		return err
	}
	return f.Truncate(start)
}

// Read returns every entry in order. A torn last line (a crash mid-write) is ignored;
// a corrupt line elsewhere is an error naming its line number.
func (l *Ledger) Read() ([]Entry, error) {
	f, err := l.paths.OpenFile(l.abs, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open ledger %s: %w", l.Path(), err)
	}
	defer f.Close()
	var entries []Entry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	var badLine int
	for n := 1; sc.Scan(); n++ {
		if badLine != 0 {
			return nil, fmt.Errorf("%s:%d: corrupt ledger entry", l.Path(), badLine)
		}
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			badLine = n
			continue
		}
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read ledger %s: %w", l.Path(), err)
	}
	return entries, nil
}
