package rules

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// Functions are the functions policy expressions may call.
func Functions() map[string]function.Function {
	return map[string]function.Function{
		"contains": stdlib.ContainsFunc,
		"length":   stdlib.LengthFunc,
		"lower":    stdlib.LowerFunc,
		"upper":    stdlib.UpperFunc,
		"join":     stdlib.JoinFunc,
		"regex":    stdlib.RegexFunc,
	}
}

// EvalContext is the context every policy expression is evaluated in.
func EvalContext(facts cty.Value) *hcl.EvalContext {
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{"facts": facts},
		Functions: Functions(),
	}
}
