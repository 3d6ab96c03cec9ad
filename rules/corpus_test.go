package rules

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// errorMarker is `# ERROR: substring` at the end of the line a diagnostic must point at.
var errorMarker = regexp.MustCompile(`#\s*ERROR:\s*(.+?)\s*$`)

// TestInvalidCorpus loads each file of testdata/invalid and checks that every error
// diagnostic points at a line marked `# ERROR: substring` and contains the substring, and
// that every marker is matched.
func TestInvalidCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid corpus: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			want := map[int]string{}
			for i, line := range strings.Split(string(data), "\n") {
				if m := errorMarker.FindStringSubmatch(line); m != nil {
					want[i+1] = m[1]
				}
			}
			if len(want) == 0 {
				t.Fatal("file has no # ERROR: marker")
			}
			_, diags := Parse([]Source{{Name: file, Data: data}}, kinds)
			got := map[int]string{}
			for _, d := range diags {
				if d.Subject == nil {
					t.Errorf("diagnostic without position: %s", FormatDiagnostic(d))
					continue
				}
				line := d.Subject.Start.Line
				text := d.Summary + ": " + d.Detail
				if sub, ok := want[line]; ok && strings.Contains(text, sub) {
					got[line] = sub
					continue
				}
				t.Errorf("unexpected diagnostic at line %d: %s", line, FormatDiagnostic(d))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("markers matched (-want +got):\n%s", diff)
			}
		})
	}
}

// TestValidCorpus checks that each file of testdata/valid loads without any diagnostic.
func TestValidCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/valid/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no valid corpus: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			_, diags := Parse([]Source{{Name: file, Data: data}}, kinds)
			if len(diags) > 0 {
				t.Errorf("diagnostics:\n%s", diagLines(diags))
			}
		})
	}
}
