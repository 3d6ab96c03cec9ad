package rules

import (
	"net/netip"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// policyFunctions are the functions policy expressions may call (docs/policy.md lists them).
// Functions whose output a small policy could blow up — format and indent (widths),
// range, setproduct, replace with an empty search string — or whose time grows with the
// square of a list (distinct) are left out, so no policy can make loading or evaluation
// hang.
func policyFunctions() map[string]function.Function {
	return map[string]function.Function{
		// strings
		"lower":       stdlib.LowerFunc,
		"upper":       stdlib.UpperFunc,
		"trimspace":   stdlib.TrimSpaceFunc,
		"trimprefix":  stdlib.TrimPrefixFunc,
		"trimsuffix":  stdlib.TrimSuffixFunc,
		"split":       stdlib.SplitFunc,
		"join":        stdlib.JoinFunc,
		"substr":      stdlib.SubstrFunc,
		"strlen":      stdlib.StrlenFunc,
		"startswith":  startsWithFunc,
		"endswith":    endsWithFunc,
		"strcontains": strContainsFunc,
		"regex":       stdlib.RegexFunc,
		"regexall":    stdlib.RegexAllFunc,
		// collections
		"length":       stdlib.LengthFunc,
		"contains":     stdlib.ContainsFunc,
		"concat":       stdlib.ConcatFunc,
		"flatten":      stdlib.FlattenFunc,
		"keys":         stdlib.KeysFunc,
		"values":       stdlib.ValuesFunc,
		"lookup":       stdlib.LookupFunc,
		"element":      stdlib.ElementFunc,
		"coalesce":     stdlib.CoalesceFunc,
		"coalescelist": stdlib.CoalesceListFunc,
		"compact":      stdlib.CompactFunc,
		"sort":         stdlib.SortFunc,
		"merge":        stdlib.MergeFunc,
		"alltrue":      allTrueFunc,
		"anytrue":      anyTrueFunc,
		"min":          stdlib.MinFunc,
		"max":          stdlib.MaxFunc,
		"abs":          stdlib.AbsoluteFunc,
		"ceil":         stdlib.CeilFunc,
		"floor":        stdlib.FloorFunc,
		"parseint":     stdlib.ParseIntFunc,
		"tostring":     stdlib.MakeToFunc(cty.String),
		"tonumber":     stdlib.MakeToFunc(cty.Number),
		"tobool":       stdlib.MakeToFunc(cty.Bool),
		"can":          tryfunc.CanFunc,
		"try":          tryfunc.TryFunc,
		"cidrcontains": cidrContainsFunc,
	}
}

// functions is built once: evaluation runs every interval and must stay cheap.
var functions = sync.OnceValue(policyFunctions)

// evalContext is the context every policy expression is evaluated in.
func evalContext(factsVal cty.Value) *hcl.EvalContext {
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{"facts": factsVal},
		Functions: functions(),
	}
}

// stringPredicate makes a function of two strings returning a bool.
func stringPredicate(first, second string, f func(s, t string) bool) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{
			{Name: first, Type: cty.String},
			{Name: second, Type: cty.String},
		},
		Type:         function.StaticReturnType(cty.Bool),
		RefineResult: func(b *cty.RefinementBuilder) *cty.RefinementBuilder { return b.NotNull() },
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.BoolVal(f(args[0].AsString(), args[1].AsString())), nil
		},
	})
}

// startsWithFunc is startswith(str, prefix), as in Terraform.
var startsWithFunc = stringPredicate("str", "prefix", strings.HasPrefix)

// endsWithFunc is endswith(str, suffix), as in Terraform.
var endsWithFunc = stringPredicate("str", "suffix", strings.HasSuffix)

// strContainsFunc is strcontains(str, substr), as in Terraform.
var strContainsFunc = stringPredicate("str", "substr", strings.Contains)

// boolFold makes alltrue/anytrue: a list of bools folded into one.
func boolFold(want bool) function.Function {
	return function.New(&function.Spec{
		Params:       []function.Parameter{{Name: "list", Type: cty.List(cty.Bool)}},
		Type:         function.StaticReturnType(cty.Bool),
		RefineResult: func(b *cty.RefinementBuilder) *cty.RefinementBuilder { return b.NotNull() },
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			for it := args[0].ElementIterator(); it.Next(); {
				_, v := it.Element()
				if !v.IsKnown() {
					return cty.UnknownVal(cty.Bool), nil
				}
				if !v.IsNull() && v.True() == want {
					return cty.BoolVal(want), nil
				}
			}
			return cty.BoolVal(!want), nil
		},
	})
}

// allTrueFunc is alltrue(list): true when every element is true (and for an empty list).
var allTrueFunc = boolFold(false)

// anyTrueFunc is anytrue(list): true when some element is true.
var anyTrueFunc = boolFold(true)

// cidrContainsFunc is cidrcontains(prefix, address): whether the IP address or prefix lies
// within prefix. Addresses of the other family are not contained (false, not an error), so
// a rule can test IPv4 and IPv6 firewall rules alike.
var cidrContainsFunc = function.New(&function.Spec{
	Params: []function.Parameter{
		{Name: "prefix", Type: cty.String},
		{Name: "address", Type: cty.String},
	},
	Type:         function.StaticReturnType(cty.Bool),
	RefineResult: func(b *cty.RefinementBuilder) *cty.RefinementBuilder { return b.NotNull() },
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		outer, err := netip.ParsePrefix(args[0].AsString())
		if err != nil {
			return cty.UnknownVal(cty.Bool), function.NewArgErrorf(0, "invalid CIDR prefix: %s", err)
		}
		inner, err := parsePrefixOrAddr(args[1].AsString())
		if err != nil {
			return cty.UnknownVal(cty.Bool), function.NewArgErrorf(1, "invalid IP address or prefix: %s", err)
		}
		outer = outer.Masked()
		ok := outer.Addr().Is4() == inner.Addr().Is4() && inner.Bits() >= outer.Bits() && outer.Contains(inner.Addr())
		return cty.BoolVal(ok), nil
	},
})

func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
