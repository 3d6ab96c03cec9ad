package main

import (
	"strings"
	"testing"
)

// TestUndoNothingToUndo: `undo --last` with no recorded change says so plainly and exits
// 0, instead of printing a health report that exits by the health.
func TestUndoNothingToUndo(t *testing.T) {
	// The re-probe stays on this machine.
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1")
	stdout, stderr, code := runCLI(t, "undo", "--last", "--root", t.TempDir(), "--timeout", "5s")
	if code != 0 || !strings.HasPrefix(stdout, "nothing to undo") || strings.Contains(stdout, "IMDS") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 0 and only \"nothing to undo\"", code, stdout, stderr)
	}
}
