package imdsmend

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection keeps the import graph one way: cmd → engine → {facts, rules,
// remediate} → report, with internal/types, the shared words, importing nothing of
// imdsmend. A stage reaching into another (or report into any stage) would make a change
// to one ripple through the others, and a cycle waiting to happen.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/imdsmend/imdsmend"
	stages := []string{mod + "/facts", mod + "/rules", mod + "/remediate", mod + "/internal/engine", mod + "/cmd"}
	source := []string{"=" + mod + "/facts", mod + "/rules", mod + "/remediate", mod + "/report", mod + "/internal/engine", mod + "/cmd"}
	tests := []struct {
		pkg       string
		forbidden []string // packages (and those under them; "=" first: only that one) it must not import, directly or not
	}{
		{"./internal/types", []string{mod + "/"}},
		{"./report", stages},
		// A source knows nothing of the hub that assembles the sections.
		{"./facts/imds", source},
		{"./facts/firewall", source},
		{"./facts/proxy", source},
		{"./facts/route", source},
		{"./facts", []string{mod + "/rules", mod + "/remediate", mod + "/report", mod + "/internal/engine", mod + "/cmd"}},
		{"./rules", []string{mod + "/remediate", mod + "/report", mod + "/internal/engine", mod + "/cmd"}},
		{"./remediate", []string{mod + "/rules", mod + "/report", mod + "/internal/engine", mod + "/cmd"}},
		{"./internal/engine", []string{mod + "/cmd"}},
		// The watch's event sources only say what changed: the loop and the stages are above them.
		{"./internal/events/...", []string{mod + "/rules", mod + "/remediate", mod + "/report", mod + "/internal/engine", mod + "/cmd"}},
	}
	for _, tt := range tests {
		out, err := exec.Command("go", "list", "-deps", tt.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", tt.pkg, err)
		}
		self := mod + strings.TrimPrefix(tt.pkg, ".")
		for _, dep := range strings.Fields(string(out)) {
			if dep == self {
				continue
			}
			for _, f := range tt.forbidden {
				exact, only := strings.CutPrefix(f, "=")
				if dep == exact || !only && strings.HasPrefix(dep, strings.TrimSuffix(f, "/")+"/") {
					t.Errorf("%s imports %s", self, dep)
				}
			}
		}
	}
}
