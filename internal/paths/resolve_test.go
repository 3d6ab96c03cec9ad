package paths

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	root := t.TempDir()
	for name, target := range map[string]string{
		"etc/environment": "/srv/env",         // absolute: starts again at root
		"etc/profile.d":   "../srv/profile.d", // relative
		"etc/escape":      "../../../../../srv/env",
		"etc/loop":        "/etc/loop",
		"etc/dangling":    "/srv/missing/file",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "srv/profile.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "srv/env"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := New(root)
	tests := []struct{ in, want, err string }{
		{"/etc/environment", "/srv/env", ""},
		{"/etc/profile.d/proxy.sh", "/srv/profile.d/proxy.sh", ""},
		{"/etc/escape", "/srv/env", ""},
		{"/etc/dangling", "/srv/missing/file", ""},
		{"/etc/plain", "/etc/plain", ""},
		{"/etc/loop", "", "too many levels of symbolic links"},
	}
	for _, tt := range tests {
		got, err := p.Resolve(tt.in)
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("Resolve(%q) = %q, %v; want %q, error containing %q", tt.in, got, err, tt.want, tt.err)
		}
	}
}
