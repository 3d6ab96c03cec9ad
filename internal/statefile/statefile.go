// Package statefile reads and updates state.json, the state directory's one JSON object
// whose keys belong to their writers (the NIC counters, the EC2 answer, the breaker).
// Every writer goes through Update, so two of them, in one process or two, never lose
// each other's key.
package statefile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/imdsmend/imdsmend/internal/paths"
)

const (
	// File is state.json's name in the state directory.
	File = "state.json"
	// LockFile, beside it, is flocked by every writer for its read-modify-write.
	LockFile = File + ".lock"
)

// ErrDamaged is in the error of a file that is not a JSON object: it reads as an empty
// one, and the next Update replaces it.
var ErrDamaged = errors.New("not a JSON object")

// mu serialises this process's writers; the flock alone would too, but each waiter would
// hold a thread blocked in the kernel.
var mu sync.Mutex

// Read returns state.json's keys; a missing file is an empty object, and so is a damaged
// one, with an error wrapping ErrDamaged.
func Read(p paths.Paths) (map[string]json.RawMessage, error) {
	file := filepath.Join(p.StateDir, File) // as seen inside --root
	doc := map[string]json.RawMessage{}
	data, err := p.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return doc, nil
	}
	if err != nil {
		return doc, fmt.Errorf("read %s: %w", file, err)
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return map[string]json.RawMessage{}, fmt.Errorf("%s is %w, replaced: %w", file, ErrDamaged, err)
	}
	if doc == nil { // "null"
		doc = map[string]json.RawMessage{}
	}
	return doc, nil
}

// Update applies edit to state.json's keys read fresh under the lock and writes the file
// back atomically, creating the state directory (0700) when missing. A damaged file is
// replaced: edit sees an empty object and, when the rest succeeds, Update returns Read's
// ErrDamaged error. A file that can't be read is left alone.
func Update(p paths.Paths, edit func(doc map[string]json.RawMessage) error) error {
	file := filepath.Join(p.StateDir, File)
	if err := p.MkdirAll(p.StateDir, 0o700); err != nil {
		return fmt.Errorf("create the state directory for %s: %w", file, err)
	}
	unlock, err := lock(p)
	if err != nil {
		return err
	}
	defer unlock()
	doc, damaged := Read(p)
	if damaged != nil && !errors.Is(damaged, ErrDamaged) {
		return damaged
	}
	if err := edit(doc); err != nil {
		return err
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", file, err)
	}
	if err := p.WriteFile(file, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return damaged
}

// lock takes the process's mutex and then the flock on LockFile, opened inside --root.
func lock(p paths.Paths) (unlock func(), err error) {
	file := filepath.Join(p.StateDir, LockFile)
	mu.Lock()
	f, err := p.OpenFile(file, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		mu.Unlock()
		return nil, fmt.Errorf("open lock %s: %w", file, err)
	}
	// Blocking is fine: a holder only reads and writes one small file.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		mu.Unlock()
		return nil, fmt.Errorf("lock %s: %w", file, err)
	}
	return func() {
		f.Close() // releases the flock
		mu.Unlock()
	}, nil
}
