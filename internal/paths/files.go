package paths

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/imdsmend/imdsmend/internal/atomicfile"
)

// The file operations below open abs as the system at Root sees it: Resolve maps its links
// into Root, and the file is then opened through an os.Root, so a link swapped in after
// Resolve cannot lead out of Root either: the kernel refuses it. Every file imdsmend writes
// under --root, and the files it reads there for decisions, go through them.

// in opens Root and returns abs resolved inside it, as a name relative to Root.
func (p Paths) in(abs string) (*os.Root, string, error) {
	resolved, err := p.Resolve(abs)
	if err != nil {
		return nil, "", err
	}
	root := p.Root
	if root == "" {
		root = "/"
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, "", fmt.Errorf("open --root %s: %w", root, err)
	}
	rel := strings.TrimPrefix(resolved, "/")
	if rel == "" {
		rel = "."
	}
	return r, rel, nil
}

// escapes turns os.Root's refusal into a message that names --root.
func (p Paths) escapes(abs string, err error) error {
	if err != nil && strings.Contains(err.Error(), "path escapes") {
		return fmt.Errorf("%s: a link leads out of --root %s; refused, nothing was changed: %w", abs, p.Root, err)
	}
	return err
}

// OpenFile opens abs inside Root (see above) with os.OpenFile's flag and perm.
func (p Paths) OpenFile(abs string, flag int, perm fs.FileMode) (*os.File, error) {
	r, rel, err := p.in(abs)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.OpenFile(rel, flag, perm)
	return f, p.escapes(abs, err)
}

// ReadFile reads abs inside Root.
func (p Paths) ReadFile(abs string) ([]byte, error) {
	f, err := p.OpenFile(abs, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// MkdirAll creates the directory abs and its parents inside Root.
func (p Paths) MkdirAll(abs string, perm fs.FileMode) error {
	r, rel, err := p.in(abs)
	if err != nil {
		return err
	}
	defer r.Close()
	return p.escapes(abs, r.MkdirAll(rel, perm))
}

// WriteFile replaces abs inside Root atomically (atomicfile).
func (p Paths) WriteFile(abs string, data []byte, perm fs.FileMode) error {
	r, rel, err := p.in(abs)
	if err != nil {
		return err
	}
	defer r.Close()
	return p.escapes(abs, atomicfile.WriteFileIn(r, rel, data, perm))
}

// System is the path inside Root of hostPath, a path under Root (the inverse of File).
func (p Paths) System(hostPath string) string {
	if p.Root == "" || p.Root == "/" {
		return filepath.Clean(hostPath)
	}
	rel, err := filepath.Rel(p.Root, hostPath)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		// Not under Root: seen from inside, it is that path under Root.
		return filepath.Clean("/" + hostPath)
	}
	return filepath.Clean("/" + rel)
}
