package rules

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

const testedPolicy = `
rule "imds_down" {
  when     = contains(["timeout", "connection_refused"], facts.imds.class)
  severity = "critical"
  summary  = "down"
}

rule "blocked" {
  when     = anytrue([for r in facts.firewall.rules : r.blocks])
  severity = "critical"
  summary  = "blocked"
}
`

func TestPolicyTests(t *testing.T) {
	p := mustParse(t, "policy.hcl", testedPolicy)
	fsys := fstest.MapFS{
		"imds_test.hcl": {Data: []byte(`
test "timeout fires imds_down" {
  facts  = { imds = { class = "timeout" }, firewall = {} }
  expect = ["imds_down"]
}

test "healthy" {
  facts   = { imds = { class = "ok", reachable = true }, firewall = { rules = [] } }
  expect  = []
  unknown = []
}

test "wrong on purpose" {
  facts  = { imds = { class = "ok" }, firewall = { rules = [{ id = "x", blocks = true }] } }
  expect = ["imds_down"]
}

test "firewall probe failed" {
  facts   = { imds = { class = "timeout" } }
  expect  = ["imds_down"]
  unknown = ["blocked"]
}

test "wrong unknown on purpose" {
  facts   = { imds = { class = "timeout" }, firewall = {} }
  expect  = ["imds_down"]
  unknown = ["blocked"]
}

test "expects an unknown rule to fire" {
  facts  = { imds = { class = "timeout" } }
  expect = ["blocked", "imds_down"]
}
`)},
		"capture_test.hcl": {Data: []byte(`
test "captured facts, one section replaced" {
  facts_file = "testdata/capture.json"
  facts      = { imds = { class = "connection_refused" } }
  expect     = ["blocked", "imds_down"]
}

test "captured facts as they are" {
  facts_file = "testdata/capture.json"
  expect     = ["blocked"]
  unknown    = []
}
`)},
		"testdata/capture.json": {Data: []byte(`{
  "imds": {"endpoint": "http://169.254.169.254", "reachable": true, "version": "v2", "class": "ok", "status": 200},
  "firewall": {"rules": [{"id": "nft/ipv4/filter/OUTPUT/1", "blocks": true, "effect": "reject"}]},
  "probes": {"imds": {"ok": true, "error": "", "duration_ms": 1.5}}
}`)},
		"notes.hcl": {Data: []byte(`not a test file`)},
	}
	cases, _, diags := LoadTests(fsys, "tests", p)
	if len(diags) > 0 {
		t.Fatalf("diagnostics:\n%s", diagLines(diags))
	}
	type outcome struct {
		Name     string
		Failures []string
	}
	var got []outcome
	var results []TestResult
	for _, tc := range cases {
		r := p.RunTest(tc)
		results = append(results, r)
		got = append(got, outcome{tc.Name, r.Failures})
	}
	want := []outcome{
		{Name: "captured facts, one section replaced"},
		{Name: "captured facts as they are"},
		{Name: "timeout fires imds_down"},
		{Name: "healthy"},
		{Name: "wrong on purpose", Failures: []string{"findings: want [imds_down], got [blocked]"}},
		{Name: "firewall probe failed"},
		{Name: "wrong unknown on purpose", Failures: []string{"unknown: want [blocked] among the undecided rules, got []"}},
		{Name: "expects an unknown rule to fire", Failures: []string{
			"findings: want [blocked, imds_down], got [imds_down]",
			"blocked is unknown: facts.firewall is null (no probe filled it)",
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}

	var out strings.Builder
	if WriteTestResults(&out, "tests", results) {
		t.Error("WriteTestResults reported success with failing cases")
	}
	wantOut := `--- PASS: captured facts, one section replaced (tests/capture_test.hcl:2)
--- PASS: captured facts as they are (tests/capture_test.hcl:8)
--- PASS: timeout fires imds_down (tests/imds_test.hcl:2)
--- PASS: healthy (tests/imds_test.hcl:7)
--- FAIL: wrong on purpose (tests/imds_test.hcl:13)
    findings: want [imds_down], got [blocked]
--- PASS: firewall probe failed (tests/imds_test.hcl:18)
--- FAIL: wrong unknown on purpose (tests/imds_test.hcl:24)
    unknown: want [blocked] among the undecided rules, got []
--- FAIL: expects an unknown rule to fire (tests/imds_test.hcl:30)
    findings: want [blocked, imds_down], got [imds_down]
    blocked is unknown: facts.firewall is null (no probe filled it)
FAIL	tests	3 of 8 tests failed
`
	if diff := cmp.Diff(wantOut, out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}

	out.Reset()
	if !WriteTestResults(&out, "tests", results[:2]) || !strings.HasSuffix(out.String(), "ok  \ttests\t2 tests\n") {
		t.Errorf("passing suite printed:\n%s", out.String())
	}
}

func TestPolicyTestErrors(t *testing.T) {
	p := mustParse(t, "policy.hcl", testedPolicy)
	tests := []struct {
		name, text string
		want       string
	}{
		{"unknown fact", `test "t" {
  facts  = { imds = { clas = "ok" } }
  expect = []
}`, `t_test.hcl:2,12: Invalid facts; facts.imds has no attribute "clas" (did you mean "class"?); it has: attempts, class, endpoint`},
		{"unknown section", `test "t" {
  facts  = { imsd = {} }
  expect = []
}`, `facts has no attribute "imsd" (did you mean "imds"?)`},
		{"wrong type", `test "t" {
  facts  = { imds = { status = "teapot" } }
  expect = []
}`, `facts.imds.status must be a number, not a string`},
		{"wrong list element", `test "t" {
  facts  = { firewall = { rules = [{ id = "a" }, { blocks = "maybe" }] } }
  expect = []
}`, `facts.firewall.rules[1].blocks must be a bool, not a string`},
		{"unknown rule", `test "t" {
  expect = ["imds_dwn"]
}`, `t_test.hcl:2,13: Unknown rule; The policy has no rule "imds_dwn". Did you mean "imds_down"?`},
		{"missing expect", `test "t" {
  facts = {}
}`, `Missing required argument; The argument "expect" is required`},
		{"facts file missing", `test "t" {
  facts_file = "nope.json"
  expect     = []
}`, `t_test.hcl:2,16: Cannot read facts file; open nope.json: file does not exist`},
		{"facts file leaves the directory", `test "t" {
  facts_file = "../etc/shadow"
  expect     = []
}`, `Cannot read facts file; open ../etc/shadow:`},
		{"facts file with an unknown field", `test "t" {
  facts_file = "bad.json"
  expect     = []
}`, `Invalid facts; facts do not fit the facts schema (docs/facts.md): json: unknown field "colour"`},
		{"duplicate test", `test "t" {
  expect = []
}
test "t" {
  expect = []
}`, `t_test.hcl:4,6: Duplicate test; A test named "t" is already defined at t_test.hcl:1,1-9.`},
		{"facts read variables", `test "t" {
  facts  = { imds = facts.imds }
  expect = []
}`, `Variables not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{
				"t_test.hcl": {Data: []byte(tt.text)},
				"bad.json":   {Data: []byte(`{"imds": {"colour": "blue"}}`)},
			}
			_, _, diags := LoadTests(fsys, ".", p)
			if !strings.Contains(diagLines(diags), tt.want) {
				t.Errorf("diagnostics:\n%s\nwant one containing:\n%s", diagLines(diags), tt.want)
			}
		})
	}
}

// TestPolicyTestRemediateArgs: a test can assert the arguments a remediate block receives,
// naming only the attributes that matter.
func TestPolicyTestRemediateArgs(t *testing.T) {
	p := mustParse(t, "policy.hcl", `
rule "blocked" {
  when     = anytrue([for r in facts.firewall.rules : r.blocks])
  severity = "critical"
  summary  = "blocked"
  remediate "firewall_delete" {
    rules = [for r in facts.firewall.rules : r if r.blocks && !r.broad]
  }
}
`)
	const rules = `facts = { firewall = { rules = [
    { id = "narrow", blocks = true, spec = "-d 169.254.169.254/32 -j DROP" },
    { id = "broad", blocks = true, broad = true },
  ] } }
  expect = ["blocked"]`
	fsys := fstest.MapFS{"fw_test.hcl": {Data: []byte(`
test "the narrow rule, by id" {
  ` + rules + `
  remediate "blocked" "firewall_delete" {
    rules = [{ id = "narrow" }]
  }
}

test "by id and spec" {
  ` + rules + `
  remediate "blocked" "firewall_delete" {
    rules = [{ id = "narrow", spec = "-d 169.254.169.254/32 -j DROP" }]
  }
}

test "wrong on purpose: both" {
  ` + rules + `
  remediate "blocked" "firewall_delete" {
    rules = [{ id = "narrow" }, { id = "broad" }]
  }
}

test "wrong on purpose: another attribute" {
  ` + rules + `
  remediate "blocked" "firewall_delete" {
    rules = [{ id = "narrow", broad = true }]
  }
}

test "nothing fires" {
  facts  = { firewall = { rules = [] } }
  expect = []
  remediate "blocked" "firewall_delete" {
    rules = []
  }
}
`)}}
	cases, _, diags := LoadTests(fsys, ".", p)
	if len(diags) > 0 {
		t.Fatalf("diagnostics:\n%s", diagLines(diags))
	}
	got := map[string][]string{}
	for _, tc := range cases {
		got[tc.Name] = p.RunTest(tc).Failures
	}
	// A failure shows what the fix received (every attribute) and what the test wanted.
	want := map[string]string{
		"the narrow rule, by id":              "",
		"by id and spec":                      "",
		"wrong on purpose: both":              `, want [{"id":"narrow"},{"id":"broad"}]`,
		"wrong on purpose: another attribute": `, want [{"broad":true,"id":"narrow"}]`,
		"nothing fires":                       `remediate "blocked" "firewall_delete": the rule did not fire, so the fix received nothing`,
	}
	for name, end := range want {
		switch f := got[name]; {
		case end == "" && len(f) != 0:
			t.Errorf("%s: failures %q, want none", name, f)
		case end != "" && (len(f) != 1 || !strings.HasPrefix(f[0], `remediate "blocked" "firewall_delete": `) || !strings.HasSuffix(f[0], end)):
			t.Errorf("%s: failures %q, want one ending in %q", name, f, end)
		}
	}
}

func TestPolicyTestRemediateErrors(t *testing.T) {
	p := mustParse(t, "policy.hcl", `
rule "blocked" {
  when     = anytrue([for r in facts.firewall.rules : r.blocks])
  severity = "critical"
  summary  = "blocked"
  remediate "firewall_delete" {
    rules = []
  }
}
`)
	tests := []struct{ block, want string }{
		{`remediate "blockd" "firewall_delete" { rules = [] }`, `Unknown rule; The policy has no rule "blockd". Did you mean "blocked"?`},
		{`remediate "blocked" "no_proxy" { restart = true }`, `Unknown remediation; Rule "blocked" has no remediate "no_proxy" block; it has: [firewall_delete].`},
		{`remediate "blocked" "firewall_delete" { rule = [] }`, `Unknown argument; remediate "firewall_delete" takes no argument "rule"; it takes: rules.`},
	}
	for _, tt := range tests {
		fsys := fstest.MapFS{"t_test.hcl": {Data: []byte("test \"t\" {\n  expect = []\n  " + tt.block + "\n}\n")}}
		_, _, diags := LoadTests(fsys, ".", p)
		if !strings.Contains(diagLines(diags), tt.want) {
			t.Errorf("%s: diagnostics:\n%s\nwant one containing:\n%s", tt.block, diagLines(diags), tt.want)
		}
	}
}
