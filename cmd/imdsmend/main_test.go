package main

import (
	"strings"
	"testing"
)

func TestMetricsPath(t *testing.T) {
	tests := []struct{ root, file, want string }{
		{"/", "/var/lib/node_exporter/imdsmend.prom", "/var/lib/node_exporter/imdsmend.prom"},
		{"/", "imdsmend.prom", "imdsmend.prom"},
		{"/mnt/image", "/var/lib/node_exporter/imdsmend.prom", "/mnt/image/var/lib/node_exporter/imdsmend.prom"},
		{"/mnt/image", "/../../etc/x.prom", "/mnt/image/etc/x.prom"},
		{"/mnt/image", "", ""},
	}
	for _, tt := range tests {
		g := &globalFlags{root: tt.root, metricsFile: tt.file}
		if got := g.metricsPath(); got != tt.want {
			t.Errorf("--root %s --metrics-file %q: %q, want %q", tt.root, tt.file, got, tt.want)
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
