package rules

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/tests/tree"
)

const mainPolicy = `
settings {
  mode = "enforce"
  allow {
    firewall = true
  }
}

rule "a" {
  when     = facts.imds.class == "timeout"
  severity = "critical"
  summary  = "a fires"
}

rule "b" {
  when     = facts.imds.class == "http_429"
  severity = "warning"
  summary  = "b fires"
}
`

// ruleView is what a test compares about a loaded rule.
type ruleView struct {
	Name, Severity, File string
	Enabled              bool
}

func viewRules(p *Policy) []ruleView {
	var out []ruleView
	for _, r := range p.Rules {
		out = append(out, ruleView{r.Name, string(r.Severity), r.DeclRange.Filename, r.Enabled})
	}
	return out
}

func TestDropIns(t *testing.T) {
	tests := []struct {
		name    string
		dropIns []string // name, text pairs after the main policy
		want    []ruleView
		errs    []string // substrings of the expected errors, in order
	}{
		{
			name: "no drop-ins",
			want: []ruleView{{"a", "critical", "policy.hcl", true}, {"b", "warning", "policy.hcl", true}},
		},
		{
			name:    "a full block replaces the rule in place",
			dropIns: []string{"10-a.hcl", `rule "a" { ` + "\n" + `when = facts.imds.class == "no_route"` + "\n" + `severity = "info"` + "\n" + `summary = "new a"` + "\n}"},
			want:    []ruleView{{"a", "info", "10-a.hcl", true}, {"b", "warning", "policy.hcl", true}},
		},
		{
			name:    "enabled = false alone turns a rule off",
			dropIns: []string{"10-off.hcl", `rule "b" { enabled = false }`},
			want:    []ruleView{{"a", "critical", "policy.hcl", true}, {"b", "warning", "policy.hcl", false}},
		},
		{
			name:    "a modification sets only what it names",
			dropIns: []string{"10-sev.hcl", `rule "a" { severity = "warning" }`},
			want:    []ruleView{{"a", "warning", "policy.hcl", true}, {"b", "warning", "policy.hcl", true}},
		},
		{
			name: "later drop-ins win",
			dropIns: []string{
				"10-off.hcl", `rule "b" { enabled = false }`,
				"20-on.hcl", `rule "b" { enabled = true }`,
			},
			want: []ruleView{{"a", "critical", "policy.hcl", true}, {"b", "warning", "policy.hcl", true}},
		},
		{
			name: "a full block drops an earlier modification",
			dropIns: []string{
				"10-off.hcl", `rule "b" { enabled = false }`,
				"20-b.hcl", `rule "b" { ` + "\n" + `when = facts.imds.class == "ok"` + "\n" + `severity = "info"` + "\n" + `summary = "b"` + "\n}",
			},
			want: []ruleView{{"a", "critical", "policy.hcl", true}, {"b", "info", "20-b.hcl", true}},
		},
		{
			name:    "a new rule in a drop-in is appended",
			dropIns: []string{"10-c.hcl", `rule "c" { ` + "\n" + `when = facts.route.ok == false` + "\n" + `severity = "info"` + "\n" + `summary = "c"` + "\n}"},
			want:    []ruleView{{"a", "critical", "policy.hcl", true}, {"b", "warning", "policy.hcl", true}, {"c", "info", "10-c.hcl", true}},
		},
		{
			name:    "modifying a rule nobody defined",
			dropIns: []string{"10-x.hcl", `rule "x" { enabled = false }`},
			want:    []ruleView{{"a", "critical", "policy.hcl", true}, {"b", "warning", "policy.hcl", true}},
			errs:    []string{`10-x.hcl:1,6: No rule to modify; A rule block without when modifies a rule loaded before this file, but no rule "x" is defined`},
		},
		{
			name:    "a modification cannot add remediations",
			dropIns: []string{"10-rem.hcl", "rule \"a\" {\n  remediate \"no_proxy\" {}\n}"},
			want:    []ruleView{{"a", "critical", "policy.hcl", true}, {"b", "warning", "policy.hcl", true}},
			errs:    []string{"10-rem.hcl:2,3: Remediation in a rule modification"},
		},
		{
			name:    "a duplicate within a drop-in cites both",
			dropIns: []string{"10-dup.hcl", "rule \"a\" { enabled = false }\nrule \"a\" { enabled = true }"},
			want:    []ruleView{{"a", "critical", "policy.hcl", false}, {"b", "warning", "policy.hcl", true}},
			errs:    []string{`10-dup.hcl:2,6: Duplicate rule; Rule "a" is already defined in this file at 10-dup.hcl:1,1-9`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, diags := parse(t, append([]string{"policy.hcl", mainPolicy}, tt.dropIns...)...)
			var errs []string
			for _, d := range diags {
				errs = append(errs, FormatDiagnostic(d))
			}
			if len(errs) != len(tt.errs) {
				t.Fatalf("diagnostics:\n%s\nwant %d matching %q", strings.Join(errs, "\n"), len(tt.errs), tt.errs)
			}
			for i := range errs {
				if !strings.HasPrefix(errs[i], tt.errs[i]) {
					t.Errorf("diagnostic %d = %q, want prefix %q", i, errs[i], tt.errs[i])
				}
			}
			if diff := cmp.Diff(tt.want, viewRules(p)); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadFromDisk(t *testing.T) {
	const offB = `rule "b" { enabled = false }`
	const builtin = `rule "builtin" {
  when     = facts.imds.reachable == false
  severity = "critical"
  summary  = "built in"
}`
	tests := []struct {
		name     string
		files    map[string]string
		explicit bool
		want     []ruleView
		sources  []string
		err      string
		warn     string // a warning the load gives, with no error
	}{
		{
			name: "main file and drop-ins in lexical order; tests and hidden files skipped",
			files: map[string]string{
				"policy.hcl":                mainPolicy,
				"policy.d/20-on.hcl":        `rule "b" { enabled = true }`,
				"policy.d/10-off.hcl":       offB,
				"policy.d/30-off_test.hcl":  `test "t" { expect = [] }`,
				"policy.d/.40-hidden.hcl":   offB,
				"policy.d/50-notes.txt":     offB,
				"policy.d/60-dir.hcl/x.hcl": offB,
			},
			want:    []ruleView{{"a", "critical", "policy.hcl", true}, {"b", "warning", "policy.hcl", true}},
			sources: []string{"policy.hcl", "policy.d/10-off.hcl", "policy.d/20-on.hcl"},
		},
		{
			name:    "absent default main file falls back to the built-in policy, drop-ins still apply",
			files:   map[string]string{"policy.d/10.hcl": `rule "builtin" { severity = "info" }`},
			want:    []ruleView{{"builtin", "info", BuiltinName, true}},
			sources: []string{BuiltinName, "policy.d/10.hcl"},
		},
		{
			name:     "an explicit main file must exist",
			files:    map[string]string{},
			explicit: true,
			err:      "Cannot read policy; open",
		},
		{
			name:  "an empty main file is an error: nothing would be checked",
			files: map[string]string{"policy.hcl": "# nothing yet\n"},
			err:   "policy.hcl:1,1: No rules; The policy defines no rules, so imdsmend would check nothing",
		},
		{
			name:  "settings alone are no policy either",
			files: map[string]string{"policy.hcl": `settings { mode = "report" }`, "policy.d/10.hcl": `settings { mode = "enforce" }`},
			err:   "No rules",
		},
		{
			name:    "an empty main file whose drop-ins define rules",
			files:   map[string]string{"policy.hcl": "", "policy.d/10.hcl": builtin},
			want:    []ruleView{{"builtin", "critical", "policy.d/10.hcl", true}},
			sources: []string{"policy.hcl", "policy.d/10.hcl"},
		},
		{
			name:    "every rule turned off: a warning",
			files:   map[string]string{"policy.hcl": mainPolicy, "policy.d/10.hcl": `rule "a" { enabled = false }` + "\n" + offB},
			want:    []ruleView{{"a", "critical", "policy.hcl", false}, {"b", "warning", "policy.hcl", false}},
			sources: []string{"policy.hcl", "policy.d/10.hcl"},
			warn:    "policy.hcl:1,1: All rules disabled; Every rule has enabled = false",
		},
		{
			name:  "drop-in errors name the drop-in",
			files: map[string]string{"policy.hcl": mainPolicy, "policy.d/10.hcl": `rule "a" { severity = "loud" }`},
			err:   "policy.d/10.hcl:1,23: Invalid severity",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tree.Write(t, dir, tt.files)
			p, diags := Load(LoadOptions{MainFile: filepath.Join(dir, "policy.hcl"), Builtin: []byte(builtin), Explicit: tt.explicit, Kinds: kinds})
			if tt.err != "" {
				if !diags.HasErrors() || !strings.Contains(diagLines(diags), tt.err) {
					t.Fatalf("diagnostics %q, want one containing %q", diagLines(diags), tt.err)
				}
				return
			}
			if diags.HasErrors() || !strings.Contains(diagLines(diags), tt.warn) || (tt.warn == "") != (len(diags) == 0) {
				t.Fatalf("diagnostics:\n%s\nwant only a warning containing %q", diagLines(diags), tt.warn)
			}
			for i := range p.Rules {
				p.Rules[i].DeclRange.Filename = strings.TrimPrefix(p.Rules[i].DeclRange.Filename, dir+"/")
			}
			var sources []string
			for _, s := range p.Sources {
				sources = append(sources, strings.TrimPrefix(s, dir+"/"))
			}
			if diff := cmp.Diff(tt.want, viewRules(p)); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.sources, sources); diff != "" {
				t.Errorf("sources (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadRefusesHugeFile(t *testing.T) {
	dir := t.TempDir()
	tree.Write(t, dir, map[string]string{"policy.hcl": "#" + strings.Repeat("x", maxPolicySize)})
	_, diags := Load(LoadOptions{MainFile: filepath.Join(dir, "policy.hcl"), Explicit: true})
	if !strings.Contains(diagLines(diags), "larger than 1024 KiB") {
		t.Errorf("diagnostics %q, want a size error", diagLines(diags))
	}
}

func TestCheckOnly(t *testing.T) {
	p := mustParse(t, "policy.hcl", mainPolicy)
	tests := []struct {
		only []string
		want string
	}{
		{[]string{"a", "b"}, ""},
		{[]string{"a", "zzz"}, `--only: The policy has no rule "zzz". Its rules: a, b`},
		{[]string{"bb", "zzz"}, `--only: The policy has no rule "bb". Did you mean "b"? The policy has no rule "zzz". Its rules: a, b`},
	}
	for _, tt := range tests {
		err := p.CheckOnly(tt.only)
		if got := fmt.Sprint(err); (err == nil) != (tt.want == "") || err != nil && got != tt.want {
			t.Errorf("CheckOnly(%q) = %v, want %q", tt.only, err, tt.want)
		}
	}
}

// TestRemediateDiagnostics: each kind's body is decoded with the kind's own schema at load
// time, and mistakes name what is valid.
func TestRemediateDiagnostics(t *testing.T) {
	tests := []struct {
		name, body string
		want       string
	}{
		{"unknown kind with a suggestion", `remediate "no_proxi" {}`,
			`policy.hcl:6,13: Unknown remediation kind; "no_proxi" is not a remediation kind. Did you mean "no_proxy"? Known kinds: firewall_delete, no_proxy.`},
		{"unknown argument", `remediate "no_proxy" { restrat = true }`,
			`policy.hcl:6,26: Unsupported argument; An argument named "restrat" is not expected here. Did you mean "restart"? Valid arguments here: restart.`},
		{"wrong type", `remediate "no_proxy" { restart = "maybe" }`,
			`policy.hcl:6,36: Incorrect attribute value type; Inappropriate value for attribute "restart": a bool is required.`},
		{"missing argument", `remediate "firewall_delete" {}`,
			`policy.hcl:6,31: Missing required argument; The argument "rules" is required, but no definition was found.`},
		{"unknown fact in an argument", `remediate "firewall_delete" { rules = [for r in facts.firewall.rules : r.idd] }`,
			`policy.hcl:6,75: Unsupported attribute; This object does not have an attribute named "idd". Did you mean "id"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "rule \"r\" {\n  when     = facts.imds.class == \"timeout\"\n  severity = \"info\"\n  summary  = \"r\"\n\n  " + tt.body + "\n}\n"
			_, diags := parse(t, "policy.hcl", src)
			if got := diagLines(diags); !strings.HasPrefix(got, tt.want) || len(diags) != 1 {
				t.Errorf("diagnostics:\n%s\nwant one starting:\n%s", got, tt.want)
			}
		})
	}
}

// TestLimitsDocumented: the limits docs/policy.md states are the code's.
func TestLimitsDocumented(t *testing.T) {
	data, err := os.ReadFile("../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf("each policy and test file is at most %d MiB", maxPolicySize>>20),
		fmt.Sprintf("nest at most %d deep", maxNesting),
		fmt.Sprintf("at most %d of the operators `!`, `-` and `?`", maxOperators),
	} {
		if !strings.Contains(strings.Join(strings.Fields(string(data)), " "), want) {
			t.Errorf("docs/policy.md does not say %q", want)
		}
	}
}
