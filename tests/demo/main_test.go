package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// asMain makes the test binary run the demo's main, so a test can see its exit code and
// messages as `sudo make demo` shows them.
const asMain = "IMDSMEND_DEMO_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestDemoSaysWhyItFails: a demo that cannot start says why (not root, binary not built),
// exit 1, instead of calling every failure an interruption. Neither case gets as far as a
// namespace.
func TestDemoSaysWhyItFails(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the demo both as root and as nobody")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A copy that nobody may run (the test binary's own directory is root's alone).
	dir, err := os.MkdirTemp("", "imdsmend-demo-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	demo := filepath.Join(dir, "demo")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(demo, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "no-such-imdsmend")
	tests := []struct {
		name string
		argv []string
		want string
	}{
		{"binary not built", []string{demo, "--imdsmend", missing, "--imdssim", demo},
			"demo: --imdsmend: stat " + missing + ": no such file or directory (build it with `make build`)\n"},
		{"not root", []string{"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", demo},
			"demo: the demo creates a network namespace and iptables rules: run it as root (sudo make demo)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(tt.argv[0], tt.argv[1:]...)
			cmd.Env = append(os.Environ(), asMain+"=1")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := cmd.ProcessState.ExitCode()
			if code != 1 || stderr.String() != tt.want {
				t.Errorf("exit %d (%v), stderr %q; want exit 1 and %q", code, err, stderr.String(), tt.want)
			}
		})
	}
}
