package rules

import (
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
)

// testKinds stands in for the fixer registry: two kinds with small schemas.
type testKinds map[string]hcldec.Spec

func (k testKinds) Spec(kind string) (hcldec.Spec, bool) {
	s, ok := k[kind]
	return s, ok
}

func (k testKinds) Kinds() []string {
	var names []string
	for n := range k {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

var kinds = testKinds{
	"firewall_delete": &hcldec.ObjectSpec{
		"rules": &hcldec.AttrSpec{Name: "rules", Type: cty.DynamicPseudoType, Required: true},
	},
	"no_proxy": &hcldec.ObjectSpec{
		"restart": &hcldec.AttrSpec{Name: "restart", Type: cty.Bool},
	},
}

// parse parses one main policy and optional drop-ins given as name, text pairs.
func parse(t testing.TB, files ...string) (*Policy, hcl.Diagnostics) {
	t.Helper()
	var sources []Source
	for i := 0; i+1 < len(files); i += 2 {
		sources = append(sources, Source{Name: files[i], Data: []byte(files[i+1])})
	}
	return Parse(sources, kinds)
}

// mustParse parses and fails the test on any diagnostic.
func mustParse(t testing.TB, files ...string) *Policy {
	t.Helper()
	p, diags := parse(t, files...)
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics:\n%s", diagLines(diags))
	}
	return p
}

func diagLines(diags hcl.Diagnostics) string {
	var lines []string
	for _, d := range diags {
		lines = append(lines, FormatDiagnostic(d))
	}
	return strings.Join(lines, "\n")
}
