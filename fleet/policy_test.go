package fleet_test

import (
	"os"
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend"
	"github.com/imdsmend/imdsmend/fleet"
	"github.com/imdsmend/imdsmend/rules"
)

// TestDefaultPolicy: the built-in fleet.hcl loads against the fleet facts and its own
// tests pass.
func TestDefaultPolicy(t *testing.T) {
	p, diags := rules.ParseSchema([]rules.Source{{Name: fleet.BuiltinName, Data: imdsmend.DefaultFleetPolicy}}, fleet.Kinds, fleet.Schema())
	if diags.HasErrors() {
		t.Fatalf("fleet.hcl: %s", diags.Error())
	}
	cases, _, diags := rules.LoadTests(imdsmend.FleetPolicyTests(), "fleettests", p)
	if diags.HasErrors() {
		t.Fatalf("fleettests: %s", diags.Error())
	}
	if len(cases) == 0 {
		t.Fatal("no fleet policy tests")
	}
	for _, tc := range cases {
		if r := p.RunTest(tc); !r.Passed() {
			t.Errorf("%s: %s", tc.Name, strings.Join(r.Failures, "; "))
		}
	}
}

// TestDocsFacts: docs/fleet.md holds the fleet facts table as the struct tags give it.
func TestDocsFacts(t *testing.T) {
	doc, err := os.ReadFile("../docs/fleet.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), fleet.FieldsTable()) {
		t.Errorf("docs/fleet.md lacks the facts table; put this in it:\n%s", fleet.FieldsTable())
	}
}
