package atomicfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func stat(t *testing.T, p string) (os.FileMode, uint32, uint32) {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	return st.Mode(), sys.Uid, sys.Gid
}

// noTemps fails if a temporary file was left in dir.
func noTemps(t *testing.T, dir string, want int) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != want {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("%s holds %v, want %d entries", dir, names, want)
	}
}

func TestWriteFileNew(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "environment")
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	if err := WriteFile(p, []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(p); string(data) != "a\n" {
		t.Errorf("content %q", data)
	}
	if mode, _, _ := stat(t, p); mode.Perm() != 0o644 {
		t.Errorf("a new file gets %v, want the requested 0644 whatever the umask", mode.Perm())
	}
	noTemps(t, dir, 1)
}

func TestWriteFileKeepsModeAndOwner(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "environment")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o440); err != nil {
		t.Fatal(err)
	}
	wantUID, wantGID := uint32(os.Getuid()), uint32(os.Getgid())
	if os.Geteuid() == 0 {
		wantUID, wantGID = 4242, 4343
		if err := os.Chown(p, 4242, 4343); err != nil {
			t.Fatal(err)
		}
	}
	// A read-only mode does not stop the replacement: the directory is writable.
	if err := WriteFile(p, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(p); string(data) != "new" {
		t.Errorf("content %q", data)
	}
	if mode, uid, gid := stat(t, p); mode.Perm() != 0o440 || uid != wantUID || gid != wantGID {
		t.Errorf("mode %v owner %d:%d, want 0440 %d:%d", mode.Perm(), uid, gid, wantUID, wantGID)
	}
	noTemps(t, dir, 1)
}

func TestWriteFileThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real")
	link := filepath.Join(dir, "link")
	if err := os.WriteFile(target, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(link, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if mode, _, _ := stat(t, link); mode&os.ModeSymlink == 0 {
		t.Errorf("the link became a %v", mode)
	}
	if data, _ := os.ReadFile(target); string(data) != "new" {
		t.Errorf("target holds %q", data)
	}
	if mode, _, _ := stat(t, target); mode.Perm() != 0o640 {
		t.Errorf("target mode %v, want 0640", mode.Perm())
	}
	noTemps(t, dir, 2)
}

func TestWriteFileFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	// A directory where the file should be: the rename fails after the temp file is written.
	p := filepath.Join(dir, "environment")
	if err := os.MkdirAll(filepath.Join(p, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("x"), 0o644); err == nil {
		t.Fatal("WriteFile over a directory succeeded")
	}
	noTemps(t, dir, 1)
	if _, err := os.Stat(filepath.Join(p, "sub")); err != nil {
		t.Errorf("the directory was damaged: %v", err)
	}
	// A missing directory: nothing is created.
	if err := WriteFile(filepath.Join(dir, "missing", "f"), []byte("x"), 0o644); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
	noTemps(t, dir, 1)
}
