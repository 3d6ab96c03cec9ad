package rules

// Tests that pin what mutation testing (tests/mutate, docs/testing.md) showed no other
// test did: limits at their boundaries, loading errors, defaults.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imdsmend/imdsmend/tests/tree"
)

const oneRule = `rule "r" {
  when     = facts.imds.reachable == false
  severity = "info"
  summary  = "r"
}
`

// nested is an attribute whose value nests depth lists, with extra brackets elsewhere so
// the file has more than maxNesting of them and is lexed.
func nested(depth int) string {
	return oneRule + "locals_x = " + strings.Repeat("[", depth) + strings.Repeat("]", depth) + "\nextra = [[1], [2]]\n"
}

func TestLimitBoundaries(t *testing.T) {
	tests := []struct {
		name string
		src  string
		err  string // "" for a policy that parses
	}{
		{"nesting exactly maxNesting deep", nested(maxNesting), ""},
		{"nesting one level more", nested(maxNesting + 1), "Nested too deeply"},
		{"one more level, no other brackets", "x = " + strings.Repeat("[", maxNesting+1) + strings.Repeat("]", maxNesting+1) + "\n", "Nested too deeply"},
		{"a few operators in a file that is lexed", nested(maxNesting) + "y = !true\nz = -1\nw = true ? 1 : 2\n", ""},
		// A '-' in a comment is no operator but makes the file lexed.
		{"exactly maxOperators operators", "x = " + strings.Repeat("!", maxOperators) + "true # -\n", ""},
		{"one operator more", "x = " + strings.Repeat("!", maxOperators+1) + "true\n", "Too many operators"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := checkNesting(Source{Name: "policy.hcl", Data: []byte(tt.src)})
			if got := ""; d != nil {
				got = d.Summary
				if tt.err == "" || !strings.Contains(got, tt.err) {
					t.Errorf("checkNesting: %s, want %q", FormatDiagnostic(d), tt.err)
				}
			} else if tt.err != "" {
				t.Errorf("checkNesting passed, want %q", tt.err)
			}
		})
	}
	if d := checkNesting(Source{Name: "p", Data: make([]byte, maxPolicySize)}); d != nil {
		t.Errorf("a file of exactly the maximum size: %s", FormatDiagnostic(d))
	}
	if d := checkNesting(Source{Name: "p", Data: make([]byte, maxPolicySize+1)}); d == nil {
		t.Error("a file one byte over the maximum passed")
	}
}

// TestReadPolicyFileBoundaries: a file of exactly the maximum size is read; a directory
// is not a policy.
func TestReadPolicyFileBoundaries(t *testing.T) {
	dir := t.TempDir()
	exact := filepath.Join(dir, "exact.hcl")
	if err := os.WriteFile(exact, []byte("#"+strings.Repeat("x", maxPolicySize-1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if data, err := readPolicyFile(nil, exact); err != nil || len(data) != maxPolicySize {
		t.Errorf("a policy of exactly %d bytes: %d bytes, %v", maxPolicySize, len(data), err)
	}
	if _, err := readPolicyFile(nil, dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory read as a policy: %v", err)
	}
}

// TestReadPolicyFileErrors: a policy file that opens but cannot be examined or read is an
// error naming the file, not an empty policy.
func TestReadPolicyFileErrors(t *testing.T) {
	tests := []struct {
		name string
		open func(string) (*os.File, error)
	}{
		{"Stat fails", func(path string) (*os.File, error) {
			f, err := os.Open(path)
			if err == nil {
				err = f.Close()
			}
			return f, err
		}},
		// A regular file, root's, opened write-only: Stat passes, reading fails.
		{"reading fails", func(path string) (*os.File, error) { return os.OpenFile(path, os.O_WRONLY, 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "policy.hcl")
			if err := os.WriteFile(path, []byte(oneRule), 0o644); err != nil {
				t.Fatal(err)
			}
			data, err := readPolicyFile(tt.open, path)
			if err == nil || !strings.Contains(err.Error(), "read policy "+path+": ") {
				t.Errorf("readPolicyFile: %q, %v; want an error naming %s", data, err, path)
			}
		})
	}
}

// TestLoadErrors: a policy path that is a directory and a policy.d that cannot be read
// are errors, not an empty policy.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		main  string
		want  string
	}{
		{"the main file is a directory", map[string]string{"policy.hcl/x": ""}, "policy.hcl", "Cannot read policy; read policy"},
		{"policy.d is a file", map[string]string{"policy.hcl": oneRule, "policy.d": "not a directory"}, "policy.hcl", "Cannot read policy; read drop-in directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tree.Write(t, dir, tt.files)
			_, diags := Load(LoadOptions{MainFile: filepath.Join(dir, tt.main), Explicit: true, Kinds: kinds})
			if got := diagLines(diags); !diags.HasErrors() || !strings.Contains(got, tt.want) {
				t.Errorf("diagnostics %q, want one containing %q", got, tt.want)
			}
		})
	}
}

// The defaults as docs/policy.md states them, not as defaultSettings computes them.
func TestSettingsDefaultsPinned(t *testing.T) {
	want := Settings{Mode: ModeEnforce, Interval: 5 * time.Minute, ProbeTimeout: 2 * time.Second, NICInterval: time.Minute,
		Breaker: Breaker{Reapplies: 3, Window: 10 * time.Minute}}
	if diff := cmp.Diff(want, defaultSettings()); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	p := mustParse(t, "policy.hcl", oneRule)
	if diff := cmp.Diff(want, p.Settings); diff != "" {
		t.Errorf("settings of a policy without a settings block (-want +got):\n%s", diff)
	}
}

func TestSettingsBoundaries(t *testing.T) {
	tests := []struct {
		settings string
		err      string
	}{
		{`imds { attempts = 10 }`, ""},
		{`imds { attempts = 11 }`, "attempts must be a whole number from 1 to 10"},
		{`imds { attempts = 1 }`, ""},
		{`imds { attempts = 0 }`, "attempts must be a whole number from 1 to 10"},
		{`breaker { reapplies = 0 }`, ""},
		{`breaker { reapplies = -1 }`, "reapplies must be a whole number from 0 to 1000"},
		{`breaker { reapplies = 1000 }`, ""},
		{`breaker { reapplies = 1001 }`, "reapplies must be a whole number from 0 to 1000"},
		{`breaker { window = "0s" }`, "window"},
		{`interval = "0s"`, "interval"},
		{`probe_timeout = "1ns"`, ""},
		{`probe_timeout = "0s"`, "probe_timeout"},
		{"interval = \"2s\"\n  probe_timeout = \"2s\"", "must be shorter than interval"},
		{"probe_timeout = \"2s\"\n  imds { connect_timeout = \"2s\" }", ""},
	}
	for _, tt := range tests {
		t.Run(tt.settings, func(t *testing.T) {
			_, diags := parse(t, "policy.hcl", oneRule+"settings {\n  "+tt.settings+"\n}\n")
			got := diagLines(diags)
			if tt.err == "" && len(diags) != 0 || tt.err != "" && (!diags.HasErrors() || !strings.Contains(got, tt.err)) {
				t.Errorf("diagnostics %q, want %q", got, tt.err)
			}
		})
	}
}

func TestCheckErrorsInsideCanAndTry(t *testing.T) {
	for _, fn := range []string{"can", "try"} {
		src := strings.Replace(oneRule, "facts.imds.reachable == false", fn+"(facts.imds.reachabel)", 1)
		if fn == "try" {
			src = strings.Replace(oneRule, "facts.imds.reachable == false", "try(facts.imds.reachabel, false)", 1)
		}
		_, diags := parse(t, "policy.hcl", src)
		if got := diagLines(diags); !diags.HasErrors() || !strings.Contains(got, `"reachabel"`) || len(diags) != 1 {
			t.Errorf("%s: diagnostics %q, want one naming the misspelt fact", fn, got)
		}
	}
}

// The checker looks inside an object key that is an expression, as anywhere else: a
// misspelt fact in a template key's conditional branch is an error.
func TestCheckObjectKeyExpressions(t *testing.T) {
	src := strings.Replace(oneRule, `summary  = "r"`, "summary  = \"r\"\n  evidence = { \"${facts.imds.reachable ? facts.imds.clas : \"x\"}\" = 1 }", 1)
	_, diags := parse(t, "policy.hcl", src)
	if got := diagLines(diags); !diags.HasErrors() || !strings.Contains(got, `"clas"`) {
		t.Errorf("diagnostics %q, want one naming the misspelt fact", got)
	}
}

// A remediate block when the build knows no kinds names that, rather than decoding it.
func TestRemediateWithoutKinds(t *testing.T) {
	src := strings.Replace(oneRule, `summary  = "r"`, "summary  = \"r\"\n  remediate \"no_proxy\" {}", 1)
	_, diags := Parse([]Source{{Name: "policy.hcl", Data: []byte(src)}}, nil)
	if got := diagLines(diags); !strings.Contains(got, "This build has no remediation kinds") {
		t.Errorf("diagnostics %q", got)
	}
}

// A policy of no sources at all has "No rules", without a file to point at.
func TestCheckSomeRuleNoSources(t *testing.T) {
	diags := checkSomeRule(&Policy{}, nil)
	if len(diags) != 1 || diags[0].Summary != "No rules" || diags[0].Subject != nil {
		t.Errorf("diagnostics %q", diagLines(diags))
	}
}

// A file whose loops fail the check is not decoded: evaluating it might not end.
func TestLoopCheckStopsDecoding(t *testing.T) {
	src := strings.Replace(oneRule, "facts.imds.reachable == false", "length([for x in [1, 2] : x]) > 0", 1)
	p, diags := parse(t, "policy.hcl", src)
	if !strings.Contains(diagLines(diags), "Invalid for expression") || len(p.Rules) != 0 {
		t.Errorf("rules %d, diagnostics %q; want no rule decoded and the loop refused", len(p.Rules), diagLines(diags))
	}
}
