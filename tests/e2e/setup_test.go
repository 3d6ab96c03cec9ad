package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSetupInstallsWhatIsMissing: `make demo`, `make test` and `make e2e` first run
// .ci/deps, the one step (shared with .ci/run) that installs the Debian packages they
// need, so the README's commands work on a fresh machine. Here everything is installed, so
// it must be silent; a missing package without root is named, with the command that
// installs it, and nothing is installed.
func TestSetupInstallsWhatIsMissing(t *testing.T) {
	root := moduleRoot(t)
	deps := filepath.Join(root, ".ci/deps")
	for _, target := range []string{"demo", "test", "e2e"} {
		out, err := exec.Command("make", "-n", "-C", root, "--no-print-directory", target).Output()
		if err != nil {
			t.Fatalf("make -n %s: %v", target, err)
		}
		if first, _, _ := strings.Cut(string(out), "\n"); first != ".ci/deps" {
			t.Errorf("make %s starts with %q, want .ci/deps (installing what it needs before building)", target, first)
		}
	}
	ci, err := os.ReadFile(filepath.Join(root, ".ci/run"))
	if err != nil {
		t.Fatal(err)
	}
	if d, m := strings.Index(string(ci), "\n.ci/deps\n"), strings.Index(string(ci), "\nmake test"); d < 0 || m < d {
		t.Errorf(".ci/run does not run .ci/deps before make test:\n%s", ci)
	}

	if out, err := exec.Command(deps).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf(".ci/deps with everything installed: %v, output %q; want silence", err, out)
	}
	const absent = "imdsmend-no-such-package"
	cmd := exec.Command("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", forNobody(t, deps), absent)
	out, err := cmd.CombinedOutput()
	want := "deps: missing Debian packages: " + absent + "; run this as root (sudo make …) or: sudo apt-get install " + absent + "\n"
	if cmd.ProcessState.ExitCode() != 1 || string(out) != want {
		t.Errorf(".ci/deps %s as nobody: %v, output %q; want exit 1 and %q", absent, err, out, want)
	}
}

// forNobody copies the executable file to a directory anyone may enter (the checkout and
// the test's own temporary directories may be root's alone) and returns the copy.
func forNobody(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "imdsmend-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(file))
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}
