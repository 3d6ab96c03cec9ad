package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runCLI runs imdsmend with args and returns what it printed and its exit code.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), code
}

// copyPolicy copies a corpus file to a directory only root can write, so the checkout's
// permissions (StrictModes) are not under test; it returns the copy's path and contents.
func copyPolicy(t *testing.T, file string) (string, []byte) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(t.TempDir(), filepath.Base(file))
	if err := os.WriteFile(abs, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return abs, data
}

var errorMarker = regexp.MustCompile(`#\s*ERROR:\s*(.+?)\s*$`)

// TestValidateInvalidCorpus: `imdsmend validate` on each file of the invalid corpus exits 1
// and prints each expected diagnostic with its file, line and source line.
func TestValidateInvalidCorpus(t *testing.T) {
	files, err := filepath.Glob("../../rules/testdata/invalid/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			abs, data := copyPolicy(t, file)
			_, stderr, code := runCLI(t, "validate", "--policy", abs)
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			for i, line := range strings.Split(string(data), "\n") {
				m := errorMarker.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				// The detail may be wrapped; compare with single spaces.
				flat := strings.Join(strings.Fields(stderr), " ")
				if at := fmt.Sprintf("on %s line %d", abs, i+1); !strings.Contains(stderr, at) {
					t.Errorf("output lacks %q:\n%s", at, stderr)
				}
				if !strings.Contains(flat, strings.Join(strings.Fields(m[1]), " ")) {
					t.Errorf("output lacks %q:\n%s", m[1], stderr)
				}
			}
		})
	}
}

func TestValidateValid(t *testing.T) {
	abs, _ := copyPolicy(t, "../../rules/testdata/valid/rules.hcl")
	stdout, stderr, code := runCLI(t, "validate", "--policy", abs)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	want := fmt.Sprintf("policy is valid: 5 rules (1 disabled) from %s; mode enforce; allows no changes\n", abs)
	if stdout != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
}

func TestValidateJSON(t *testing.T) {
	abs, _ := copyPolicy(t, "../../rules/testdata/invalid/bad_severity.hcl")
	stdout, _, code := runCLI(t, "validate", "--format", "json", "--policy", abs)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	want := fmt.Sprintf(`{
  "valid": false,
  "diagnostics": [
    {
      "severity": "error",
      "summary": "Invalid severity",
      "detail": "severity must be one of \"info\", \"warning\", \"critical\", not \"high\".",
      "file": %q,
      "line": 3,
      "column": 14
    }
  ]
}
`, abs)
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
}

// TestValidateRelativePolicy: without --root, --policy is relative to the working directory.
func TestValidateRelativePolicy(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.hcl"), []byte(`settings { mode = "report" }`+"\n"+`rule "r" {`+"\n"+`when = facts.imds.reachable`+"\n"+`severity = "info"`+"\n"+`summary = "r"`+"\n}"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	stdout, stderr, code := runCLI(t, "validate", "--policy", "policy.hcl")
	if want := "policy is valid: 1 rules (0 disabled) from " + filepath.Join(dir, "policy.hcl") + "; mode report; allows no changes\n"; code != 0 || stdout != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want %q", code, stdout, stderr, want)
	}
}

// TestValidateKeepsCommandsWhole: a diagnostic's detail is printed unwrapped, so a command
// in it (here the chmod that fixes an unsafe policy file) copies and pastes in one piece
// however long its path.
func TestValidateKeepsCommandsWhole(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("a-rather-long-directory-name/", 3))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "policy.hcl")
	if err := os.WriteFile(file, []byte(`rule "r" { when = facts.imds.reachable }`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, 0o664); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runCLI(t, "validate", "--policy", file)
	if want := "Fix it with: chmod go-w " + file + "\n"; code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr:\n%s\nwant a line ending in %q", code, stderr, want)
	}
}
