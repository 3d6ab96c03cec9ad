package rules

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// TestDecodeValueAsGohcl checks that settings decode values and report unsuitable ones
// exactly as gohcl.DecodeExpression, which they used before (gohcl stays out of the binary).
func TestDecodeValueAsGohcl(t *testing.T) {
	exprs := []string{`true`, `false`, `"true"`, `"30s"`, `3`, `1.5`, `-2`, `"7"`, `null`, `[1]`, `{a = 1}`, `"x${1}"`}
	targets := []struct {
		ty  cty.Type
		new func() any
	}{
		{cty.Bool, func() any { return new(bool) }},
		{cty.Number, func() any { return new(int) }},
		{cty.String, func() any { return new(string) }},
	}
	for _, src := range exprs {
		for _, tgt := range targets {
			t.Run(fmt.Sprintf("%s as %s", src, tgt.ty.FriendlyName()), func(t *testing.T) {
				expr, diags := hclsyntax.ParseExpression([]byte(src), "p.hcl", hcl.InitialPos)
				if diags.HasErrors() {
					t.Fatal(diags)
				}
				want, got := tgt.new(), tgt.new()
				wantDiags := gohcl.DecodeExpression(expr, nil, want)
				gotDiags := decodeValue(expr, tgt.ty, got)
				if diff := cmp.Diff(fmt.Sprint(wantDiags), fmt.Sprint(gotDiags)); diff != "" {
					t.Errorf("diagnostics (-gohcl +decodeValue):\n%s", diff)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("value (-gohcl +decodeValue):\n%s", diff)
				}
			})
		}
	}
}
