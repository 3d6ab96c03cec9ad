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
}

// Ledger is the append-only record of changes, the source of truth for undo.
type Ledger struct {
	path string
}

// NewLedger returns the ledger stored at path.
func NewLedger(path string) *Ledger { return &Ledger{path: path} }

// Path is where the ledger lives.
func (l *Ledger) Path() string { return l.path }

// Append writes one entry and syncs it to disk before returning, so an intent is durable
// before the change it announces is made.
func (l *Ledger) Append(e Entry) error {
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode ledger entry: %w", err)
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open ledger %s: %w", l.path, err)
	}
	defer f.Close()
	if err := dropTornTail(f); err != nil {
		return fmt.Errorf("repair ledger %s: %w", l.path, err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("append to ledger %s: %w", l.path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync ledger %s: %w", l.path, err)
	}
	return nil
}

// dropTornTail cuts a last line without its newline, left by a crash mid-write: appending
// after it would glue the next entry to it and corrupt both. Its Append never returned, so
// the change it announced was never made.
func dropTornTail(f *os.File) error {
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
			return f.Truncate(pos + int64(i) + 1)
		}
	}
	return f.Truncate(0)
}

// Read returns every entry in order. A torn last line (a crash mid-write) is ignored;
// a corrupt line elsewhere is an error naming its line number.
func (l *Ledger) Read() ([]Entry, error) {
	f, err := os.Open(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open ledger %s: %w", l.path, err)
	}
	defer f.Close()
	var entries []Entry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	var badLine int
	for n := 1; sc.Scan(); n++ {
		if badLine != 0 {
			return nil, fmt.Errorf("%s:%d: corrupt ledger entry", l.path, badLine)
		}
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			badLine = n
			continue
		}
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read ledger %s: %w", l.path, err)
	}
	return entries, nil
}
