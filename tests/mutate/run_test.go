package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestTestPackage runs the tool on a tiny module whose tests kill some mutants and not
// others, and checks each outcome and that the source file is left as it was.
func TestTestPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a test binary per mutant")
	}
	root := t.TempDir()
	src := "package p\n\nfunc Pos(n int) bool {\n\treturn n > 0\n}\n\nfunc Wait() {}\n"
	files := map[string]string{
		"go.mod":      "module example.com/m\n\ngo 1.26\n",
		"p/p.go":      src,
		"p/p_test.go": "package p\n\nimport \"testing\"\n\nfunc TestPos(t *testing.T) {\n\tWait()\n\tif !Pos(1) || Pos(-1) {\n\t\tt.Fatal(\"Pos\")\n\t}\n}\n",
	}
	for name, text := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := Mutants("p/p.go", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	wait := strings.Index(src, "{}")
	ms = append(ms,
		Mutant{File: "p/p.go", Line: 7, Start: wait, End: wait + 2, Repl: "{ for {} }"}, // never returns
		Mutant{File: "p/p.go", Line: 7, Start: wait, End: wait + 2, Repl: "{ x }"},      // does not compile
	)
	r := &runner{root: root, work: t.TempDir(), timeout: 2 * time.Second, sandbox: os.Geteuid() == 0}
	var reported []string
	got, err := r.testPackage(pkg{dir: "p", mutants: ms}, io.Discard, func(m Mutant) { reported = append(reported, m.String()) })
	if err != nil {
		t.Fatal(err)
	}
	// n > 0 → n >= 0 and n > -1 pass both checks; n > 1 fails Pos(1).
	want := []string{
		"p/p.go:4: return n > 0 → return n >= 0",
		"p/p.go:4: return n > 0 → return n > (-1)",
	}
	var survivors []string
	for _, m := range got.Survived {
		survivors = append(survivors, m.String())
	}
	if diff := cmp.Diff(want, survivors); diff != "" {
		t.Errorf("survivors (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, reported); diff != "" {
		t.Errorf("reported survivors (-want +got):\n%s", diff)
	}
	if got.Killed != 2 || got.TimedOut != 1 || got.Discarded != 1 || got.Total != 5 {
		t.Errorf("killed %d (timed out %d), discarded %d, total %d; want 2 (1), 1, 5", got.Killed, got.TimedOut, got.Discarded, got.Total)
	}
	if after, err := os.ReadFile(filepath.Join(root, "p/p.go")); err != nil || string(after) != src {
		t.Errorf("p/p.go changed on disk: %q, %v", after, err)
	}
}
