package rules

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

func TestFunctions(t *testing.T) {
	tests := []struct {
		expr string
		want cty.Value
		err  string
	}{
		{expr: `cidrcontains("169.254.0.0/16", "169.254.169.254")`, want: cty.True},
		{expr: `cidrcontains("169.254.169.254/32", "169.254.169.254")`, want: cty.True},
		{expr: `cidrcontains("169.254.169.0/24", "169.254.170.1")`, want: cty.False},
		{expr: `cidrcontains("0.0.0.0/0", "169.254.169.254/32")`, want: cty.True},
		{expr: `cidrcontains("169.254.169.254/32", "169.254.0.0/16")`, want: cty.False},
		{expr: `cidrcontains("169.254.1.2/16", "169.254.169.254")`, want: cty.True},
		{expr: `cidrcontains("fd00:ec2::/64", "fd00:ec2::254")`, want: cty.True},
		{expr: `cidrcontains("0.0.0.0/0", "fd00:ec2::254")`, want: cty.False},
		{expr: `cidrcontains("::/0", "169.254.169.254")`, want: cty.False},
		{expr: `cidrcontains("169.254.0.0/16", "::ffff:169.254.169.254")`, want: cty.True},
		{expr: `cidrcontains("169.254.0.0", "169.254.169.254")`, err: "invalid CIDR prefix"},
		{expr: `cidrcontains("169.254.0.0/16", "imds")`, err: "invalid IP address or prefix"},
		{expr: `startswith("http_403", "http_")`, want: cty.True},
		{expr: `startswith("ok", "http_")`, want: cty.False},
		{expr: `endswith("KUBE-SERVICES", "SERVICES")`, want: cty.True},
		{expr: `strcontains("-A OUTPUT -d 169.254.169.254/32 -j DROP", "169.254.169.254")`, want: cty.True},
		{expr: `alltrue([])`, want: cty.True},
		{expr: `alltrue([true, true])`, want: cty.True},
		{expr: `alltrue([true, false])`, want: cty.False},
		{expr: `anytrue([])`, want: cty.False},
		{expr: `anytrue([false, true])`, want: cty.True},
		{expr: `anytrue([false, null])`, want: cty.False},
		{expr: `can(regex("^http_4", "http_403"))`, want: cty.True},
		{expr: `try(tonumber("x"), -1)`, want: cty.NumberIntVal(-1)},
	}
	ctx := &hcl.EvalContext{Functions: policyFunctions()}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			expr, diags := hclsyntax.ParseExpression([]byte(tt.expr), "test.hcl", hcl.InitialPos)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			got, diags := expr.Value(ctx)
			if tt.err != "" {
				if !strings.Contains(diagLines(diags), tt.err) {
					t.Fatalf("diagnostics %q, want %q", diagLines(diags), tt.err)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diagLines(diags))
			}
			if !got.RawEquals(tt.want) {
				t.Errorf("= %#v, want %#v", got, tt.want)
			}
		})
	}
}

// TestFunctionsWithoutBlowUp: functions whose output a small policy could make huge stay out.
func TestFunctionsWithoutBlowUp(t *testing.T) {
	for _, name := range []string{"distinct", "format", "formatlist", "indent", "range", "setproduct", "replace", "regex_replace", "file", "templatefile"} {
		if _, ok := policyFunctions()[name]; ok {
			t.Errorf("function %s is offered", name)
		}
	}
}

// TestFunctionsDocumented: docs/policy.md has a section on every function, and no more.
func TestFunctionsDocumented(t *testing.T) {
	data, err := os.ReadFile("../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "| `"); ok {
			if name, _, ok := strings.Cut(rest, "("); ok && !strings.ContainsAny(name, " `") {
				documented = append(documented, name)
			}
		}
	}
	slices.Sort(documented)
	want := slices.Sorted(maps.Keys(policyFunctions()))
	if !slices.Equal(documented, want) {
		t.Errorf("docs/policy.md documents functions\n%v\nbut the policy offers\n%v", documented, want)
	}
}
