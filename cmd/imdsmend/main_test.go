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
