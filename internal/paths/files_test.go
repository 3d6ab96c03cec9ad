package paths

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFilesStayInRoot: under a root, links that lead to host files (absolute, relative
// climbing out, through a linked directory) are followed as the tree sees them, so writes
// and reads stay inside the root and the host file is never touched.
func TestFilesStayInRoot(t *testing.T) {
	outside := t.TempDir() // stands for the host: nothing in it may change
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("host file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, link, target string // link (inside root) → target
		file               string // the system path written and read
		want               string // where the write lands, inside root
	}{
		{"absolute link to a host file", "var/lib/imdsmend/backups/abc", victim, "/var/lib/imdsmend/backups/abc", victim},
		{"relative link climbing out", "var/lib/imdsmend/ledger.jsonl", strings.Repeat("../", 12) + strings.TrimPrefix(victim, "/"), "/var/lib/imdsmend/ledger.jsonl", victim},
		{"linked directory", "var/lib/imdsmend/backups", outside, "/var/lib/imdsmend/backups/victim", victim},
		{"linked /etc", "etc", outside, "/etc/victim", victim},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			link := filepath.Join(root, tt.link)
			if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tt.target, link); err != nil {
				t.Fatal(err)
			}
			// The directory the link names, as the tree sees it, exists in the tree too.
			if err := os.MkdirAll(filepath.Join(root, outside), 0o755); err != nil {
				t.Fatal(err)
			}
			p := New(root)
			if data, err := p.ReadFile(tt.file); err == nil {
				t.Errorf("ReadFile(%s) read %q through the link; want the file inside the root (missing)", tt.file, data)
			}
			if err := p.MkdirAll(filepath.Dir(tt.file), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := p.WriteFile(tt.file, []byte("written\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := p.OpenFile(tt.file, os.O_RDWR|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			if got, err := os.ReadFile(victim); err != nil || string(got) != "host file\n" {
				t.Errorf("the host file holds %q, %v; want it untouched", got, err)
			}
			if _, err := os.Stat(filepath.Join(root, tt.want)); err != nil {
				t.Errorf("the write did not land inside the root: %v", err)
			}
		})
	}
}

// TestFilesRefuseEscape: a link that Resolve did not see (swapped in after it) is refused
// by the kernel, with a message that names --root.
func TestFilesRefuseEscape(t *testing.T) {
	outside := t.TempDir()
	root := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "d")); err != nil {
		t.Fatal(err)
	}
	p := New(root)
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.OpenFile("d/f", os.O_WRONLY|os.O_CREATE, 0o600)
	if err = p.escapes("/d/f", err); err == nil || !strings.Contains(err.Error(), "leads out of --root "+root) {
		t.Errorf("got %v; want a refusal naming --root", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("a file was created outside the root: %v", entries)
	}
}
