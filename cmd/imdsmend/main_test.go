package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMetricsPath(t *testing.T) {
	image := t.TempDir()
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// Under --root the path stays as seen inside it: report.WriteMetrics resolves it there.
	tests := []struct{ root, file, want string }{
		{"/", "/var/lib/node_exporter/imdsmend.prom", "/var/lib/node_exporter/imdsmend.prom"},
		{"/", "imdsmend.prom", filepath.Join(cwd, "imdsmend.prom")},
		{image, "/var/lib/node_exporter/imdsmend.prom", "/var/lib/node_exporter/imdsmend.prom"},
		{image, "", ""},
	}
	for _, tt := range tests {
		g := &globalFlags{root: tt.root, metricsFile: tt.file}
		if got, err := g.metricsPath(); err != nil || got != tt.want {
			t.Errorf("--root %s --metrics-file %q: %q, %v; want %q", tt.root, tt.file, got, err, tt.want)
		}
	}
}

// TestUndoNeedsOneMode: undo takes exactly one of --last, --list and action IDs, and says
// so before it reads anything.
func TestUndoNeedsOneMode(t *testing.T) {
	// Should the check ever let one through, its re-probe stays on this machine.
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1")
	for _, args := range [][]string{{}, {"--list", "firewall_delete-0a1b2c3d4e"}, {"--last", "firewall_delete-0a1b2c3d4e"}, {"--last", "--list"}} {
		_, stderr, code := runCLI(t, append([]string{"undo", "--root", t.TempDir()}, args...)...)
		if code != 1 || !strings.Contains(stderr, "give either --last, --list or one or more action IDs") && !strings.Contains(stderr, "none of the others can be") {
			t.Errorf("undo %v: exit %d, stderr %q; want exit 1 naming the choices", args, code, stderr)
		}
	}
}

// TestBadGlobalFlags: a flag whose value would make every run wrong is rejected before
// anything runs, exit 1, with a message that names the flag and the fix.
func TestBadGlobalFlags(t *testing.T) {
	// Should a check ever let one through, its probe stays on this machine.
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1")
	policy := filepath.Join(t.TempDir(), "policy.hcl")
	if err := os.WriteFile(policy, []byte(`rule "imds_unreachable" {
  severity = "critical"
  summary  = "IMDS is unreachable"
  when     = facts.imds != null && !facts.imds.reachable
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"check", "--timeout", "0"}, "--timeout must be longer than 0, not 0s"},
		{[]string{"check", "--timeout", "-5s"}, "--timeout must be longer than 0, not -5s"},
		{[]string{"watch", "--timeout", "0s"}, "--timeout must be longer than 0, not 0s"},
		{[]string{"check", "--only", "imds_unreachble"}, `--only: The policy has no rule "imds_unreachble". Did you mean "imds_unreachable"? Its rules: imds_unreachable`},
		{[]string{"plan", "--only", "imds_unreachable,zz"}, `--only: The policy has no rule "zz". Its rules: imds_unreachable`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			args := append(tt.args, "--policy", policy, "--state-dir", t.TempDir())
			stdout, stderr, code := runCLI(t, args...)
			if want := "imdsmend: " + tt.want + "\n"; code != 1 || stderr != want || stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and only %q", code, stdout, stderr, want)
			}
		})
	}
}
