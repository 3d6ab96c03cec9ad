// Package atomicfile replaces files so that readers see either the old or the new content,
// never a half-written file, and the file keeps its mode and owner.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFile writes data to a temporary file in the directory of path, fsyncs it and renames
// it over path. An existing file's mode and owner are kept; a new file gets perm.
// A symlink at path is resolved so the link stays a link and its target is replaced.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	target, err := filepath.EvalSymlinks(path)
	switch {
	case err == nil:
		path = target
	case !os.IsNotExist(err):
		return fmt.Errorf("resolve %s: %w", path, err)
	}
	r, err := os.OpenRoot(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("open directory of %s: %w", path, err)
	}
	defer r.Close()
	return WriteFileIn(r, filepath.Base(path), data, perm)
}

// WriteFileIn is WriteFile for the file name inside r: every file it touches stays inside
// r, whatever links the tree holds. A symlink at name is replaced by the file, never
// followed: the caller resolves links it means to keep (paths.Paths.WriteFile does).
func WriteFileIn(r *os.Root, name string, data []byte, perm fs.FileMode) error {
	uid, gid := -1, -1
	if st, err := r.Lstat(name); err == nil && st.Mode().IsRegular() {
		perm = st.Mode().Perm()
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(sys.Uid), int(sys.Gid)
		}
	}
	dir, base := filepath.Split(name)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmpName := filepath.Join(dir, "."+base+".imdsmend-"+hex.EncodeToString(rnd[:]))
	tmp, err := r.OpenFile(tmpName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create temp file in %s: %w", filepath.Join(r.Name(), dir), err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			_ = r.Remove(tmpName)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if uid >= 0 {
		if err := tmp.Chown(uid, gid); err != nil {
			return fmt.Errorf("chown %s: %w", tmp.Name(), err)
		}
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := r.Rename(tmpName, name); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp.Name(), filepath.Join(r.Name(), name), err)
	}
	done = true
	if d, err := r.Open(filepath.Clean(dir)); err == nil {
		// Persist the rename itself; a failure here does not undo the write.
		_ = d.Sync()
		d.Close()
	}
	return nil
}
