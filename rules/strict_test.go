package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/tests/tree"
)

func TestStrictModes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to other users")
	}
	tests := []struct {
		name string
		path string // relative to the policy directory
		mode os.FileMode
		uid  int
		want string // "" when the policy must load
	}{
		{name: "root-owned 0644 file", path: "policy.hcl", mode: 0o644, uid: 0},
		{name: "root-owned 0600 drop-in", path: "policy.d/10.hcl", mode: 0o600, uid: 0},
		{name: "group-writable main file", path: "policy.hcl", mode: 0o664, uid: 0,
			want: "Unsafe policy file; {dir}/policy.hcl is writable by group (mode -rw-rw-r--), so someone other than root could decide what imdsmend changes as root. Fix it with: chmod go-w {dir}/policy.hcl"},
		{name: "world-writable drop-in", path: "policy.d/10.hcl", mode: 0o646, uid: 0,
			want: "Unsafe policy file; {dir}/policy.d/10.hcl is writable by others (mode -rw-r--rw-)"},
		{name: "drop-in owned by another user", path: "policy.d/10.hcl", mode: 0o644, uid: 1000,
			want: "Unsafe policy file; {dir}/policy.d/10.hcl is owned by uid 1000, not root, so someone other than root could decide what imdsmend changes as root. Fix it with: chown root: {dir}/policy.d/10.hcl"},
		{name: "main file owned by another user", path: "policy.hcl", mode: 0o644, uid: 1000,
			want: "Unsafe policy file; {dir}/policy.hcl is owned by uid 1000, not root"},
		{name: "writable policy directory", path: ".", mode: os.ModeDir | 0o777, uid: 0,
			want: "Unsafe policy directory; {dir} is writable by group and others (mode drwxrwxrwx)"},
		{name: "sticky world-writable directory too", path: ".", mode: os.ModeDir | os.ModeSticky | 0o777, uid: 0,
			want: "Unsafe policy directory; {dir} is writable by group and others"},
		{name: "drop-in directory owned by another user", path: "policy.d", mode: os.ModeDir | 0o755, uid: 1000,
			want: "Unsafe policy directory; {dir}/policy.d is owned by uid 1000, not root, so someone other than root could decide what imdsmend changes as root. Fix it with: chown root: {dir}/policy.d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "imdsmend")
			tree.Write(t, dir, map[string]string{"policy.hcl": mainPolicy, "policy.d/10.hcl": `rule "a" { enabled = false }`})
			p := filepath.Join(dir, tt.path)
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(p, tt.uid, tt.uid); err != nil {
				t.Fatal(err)
			}
			// Only the file under test is unsafe; errors accumulate, so match one line.
			_, diags := Load(LoadOptions{MainFile: filepath.Join(dir, "policy.hcl"), Explicit: true, Kinds: kinds})
			got := diagLines(diags)
			want := strings.ReplaceAll(tt.want, "{dir}", dir)
			switch {
			case want == "" && len(diags) > 0:
				t.Errorf("unexpected diagnostics:\n%s", got)
			case want != "" && !strings.Contains(got, want):
				t.Errorf("diagnostics:\n%s\nwant one containing:\n%s", got, want)
			}
		})
	}
}

// TestStrictModesBuiltinFallback: drop-ins beside an absent main file are checked as well.
func TestStrictModesBuiltinFallback(t *testing.T) {
	dir := t.TempDir()
	tree.Write(t, dir, map[string]string{"policy.d/10.hcl": `rule "a" { enabled = false }`})
	if err := os.Chmod(filepath.Join(dir, "policy.d/10.hcl"), 0o666); err != nil {
		t.Fatal(err)
	}
	_, diags := Load(LoadOptions{MainFile: filepath.Join(dir, "policy.hcl"), Builtin: []byte(mainPolicy), Kinds: kinds})
	if want := "10.hcl is writable by group and others"; !strings.Contains(diagLines(diags), want) {
		t.Errorf("diagnostics %q, want %q", diagLines(diags), want)
	}
}
