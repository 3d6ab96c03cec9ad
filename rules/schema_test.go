package rules

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// TestFleetLimits: settings { fleet { max_changes, max_error_rate } } are decoded, merged
// from drop-ins, and refused out of range.
func TestFleetLimits(t *testing.T) {
	const rule = `rule "r" {
  when     = facts.imds.reachable
  severity = "info"
  summary  = "x"
}
`
	tests := []struct {
		name  string
		files []string
		want  FleetLimits
		err   string
	}{
		{"unset", []string{"policy.hcl", rule}, FleetLimits{}, ""},
		{"set", []string{"policy.hcl", rule + "settings {\n  fleet {\n    max_changes = 500\n    max_error_rate = 0.01\n  }\n}\n"}, FleetLimits{MaxChanges: 500, MaxErrorRate: 0.01}, ""},
		{"a drop-in changes one", []string{"policy.hcl", rule + "settings {\n  fleet {\n    max_changes = 500\n    max_error_rate = 0.01\n  }\n}\n",
			"policy.d/10.hcl", "settings {\n  fleet {\n    max_error_rate = 0.2\n  }\n}\n"}, FleetLimits{MaxChanges: 500, MaxErrorRate: 0.2}, ""},
		{"no changes at all", []string{"policy.hcl", rule + "settings {\n  fleet {\n    max_changes = 0\n  }\n}\n"}, FleetLimits{}, "Invalid max_changes"},
		{"a fraction of a change", []string{"policy.hcl", rule + "settings {\n  fleet {\n    max_changes = 1.5\n  }\n}\n"}, FleetLimits{}, "Invalid max_changes"},
		{"an error rate of exactly 1", []string{"policy.hcl", rule + "settings {\n  fleet {\n    max_error_rate = 1\n  }\n}\n"}, FleetLimits{MaxErrorRate: 1}, ""},
		{"an error rate of 0", []string{"policy.hcl", rule + "settings {\n  fleet {\n    max_error_rate = 0\n  }\n}\n"}, FleetLimits{}, "Invalid max_error_rate"},
		{"a negative error rate", []string{"policy.hcl", rule + "settings {\n  fleet {\n    max_error_rate = -0.5\n  }\n}\n"}, FleetLimits{}, "Invalid max_error_rate"},
		{"one change", []string{"policy.hcl", rule + "settings {\n  fleet {\n    max_changes = 1\n  }\n}\n"}, FleetLimits{MaxChanges: 1}, ""},
		{"an error rate over 1", []string{"policy.hcl", rule + "settings {\n  fleet {\n    max_error_rate = 1.5\n  }\n}\n"}, FleetLimits{}, "Invalid max_error_rate"},
		{"a percentage", []string{"policy.hcl", rule + "settings {\n  fleet {\n    max_error_rate = 5\n  }\n}\n"}, FleetLimits{}, "Invalid max_error_rate"},
		{"not constant", []string{"policy.hcl", rule + "settings {\n  fleet {\n    max_changes = facts.imds.status\n  }\n}\n"}, FleetLimits{}, "Variables not allowed"},
		{"unknown", []string{"policy.hcl", rule + "settings {\n  fleet {\n    max_change = 3\n  }\n}\n"}, FleetLimits{}, "Unsupported argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, diags := parse(t, tt.files...)
			if tt.err != "" {
				if !strings.Contains(diags.Error(), tt.err) {
					t.Errorf("diagnostics %q, want %q", diags.Error(), tt.err)
				}
				return
			}
			if diags.HasErrors() || p.Settings.Fleet != tt.want {
				t.Errorf("limits %+v (%s), want %+v", p.Settings.Fleet, diags.Error(), tt.want)
			}
		})
	}
}

// TestParseSchema: a policy over another facts schema is checked against it — its facts
// are known, the instance's are not — and its tests are written in it.
func TestParseSchema(t *testing.T) {
	ty := cty.Object(map[string]cty.Type{"box": cty.Object(map[string]cty.Type{"open": cty.Bool})})
	schema := &Schema{Type: ty, Decode: func(data []byte) (cty.Value, error) { return ctyjson.Unmarshal(data, ty) }}
	const policy = `rule "box_open" {
  when     = facts.box.open
  severity = "warning"
  summary  = "open"
}
`
	p, diags := ParseSchema([]Source{{Name: "box.hcl", Data: []byte(policy)}}, nil, schema)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if _, diags := ParseSchema([]Source{{Name: "box.hcl", Data: []byte(strings.Replace(policy, "facts.box.open", "facts.imds.reachable", 1))}}, nil, schema); !strings.Contains(diags.Error(), "Unsupported attribute") {
		t.Errorf("an instance fact in a box policy: %q, want Unsupported attribute", diags.Error())
	}
	fsys := fstest.MapFS{"box_test.hcl": {Data: []byte(`test "open" {
  facts  = { box = { open = true } }
  expect = ["box_open"]
}
test "closed" {
  facts  = { box = { open = false } }
  expect = []
}
`)}}
	cases, _, diags := LoadTests(fsys, "t", p)
	if diags.HasErrors() || len(cases) != 2 {
		t.Fatalf("tests: %d, %s", len(cases), diags.Error())
	}
	for _, tc := range cases {
		if r := p.RunTest(tc); !r.Passed() {
			t.Errorf("%s: %v", tc.Name, r.Failures)
		}
	}
}
