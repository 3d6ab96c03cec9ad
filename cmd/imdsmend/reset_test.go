package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReset: `imdsmend reset` names the fixes the breaker held, forgets them and keeps the
// other keys of state.json; a second reset finds nothing held.
func TestReset(t *testing.T) {
	root := t.TempDir()
	state := filepath.Join(root, "var/lib/imdsmend/state.json")
	if err := os.MkdirAll(filepath.Dir(state), 0o700); err != nil {
		t.Fatal(err)
	}
	held := `{"nic": {}, "breaker": {"policy": "x", "fixes": {"k": {"rule": "proxy_leak", "kind": "no_proxy", "target": "/etc/environment", "applied": [], "held": "2026-12-01T06:00:00Z"}}}}`
	if err := os.WriteFile(state, []byte(held), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ want string }{
		{"breaker reset: applied again from the next run: proxy_leak: no_proxy /etc/environment\n"},
		{"breaker reset: no fix was held\n"},
	}
	for _, tt := range tests {
		stdout, stderr, code := runCLI(t, "reset", "--root", root, "--timeout", "60s")
		if code != 0 || stdout != tt.want {
			t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 0 and %q", code, stdout, stderr, tt.want)
		}
	}
	data, err := os.ReadFile(state)
	if err != nil || strings.Contains(string(data), "breaker") || !strings.Contains(string(data), "nic") {
		t.Errorf("state.json after reset: %s (%v)", data, err)
	}
}
