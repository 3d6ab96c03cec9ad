package rules

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

var ruleSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "when"}, {Name: "severity"}, {Name: "summary"}, {Name: "hint"}, {Name: "evidence"}, {Name: "enabled"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "remediate", LabelNames: []string{"kind"}}},
}

// ruleNamePattern keeps rule names usable as --only arguments, journal fields and metric
// labels.
var ruleNamePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

// checker decodes rule blocks and checks every expression at load time by evaluating it
// with the facts unknown: the facts schema is known, their values are not. A typo in a
// fact's name, a type error or a bad remediate argument is an error with its position,
// and no probe has to run to find it.
type checker struct {
	kinds Kinds
	// ctx has the facts unknown: an expression that is known in it does not depend on them.
	ctx *hcl.EvalContext
}

func newChecker(kinds Kinds, factsType cty.Type) *checker {
	// The facts variable itself is never null, only its sections can be.
	return &checker{kinds: kinds, ctx: evalContext(cty.UnknownVal(factsType).RefineNotNull())}
}

// value evaluates expr for checking: its result is HCL's over the unknown facts, and
// operands adds the errors in the parts that evaluation skips.
func (c *checker) value(expr hcl.Expression) (cty.Value, hcl.Diagnostics) {
	v, diags := expr.Value(c.ctx)
	if n, ok := expr.(hclsyntax.Expression); ok {
		_, d := c.operands(n, c.ctx)
		diags = merge(diags, d)
	}
	explainAttributes(diags)
	return v, diags
}

// bodyDiags completes diags, from decoding body over the unknown facts, with what operands
// finds in each of its arguments.
func (c *checker) bodyDiags(body hcl.Body, diags hcl.Diagnostics) hcl.Diagnostics {
	if b, ok := body.(*hclsyntax.Body); ok {
		hclsyntax.VisitAll(b, func(n hclsyntax.Node) hcl.Diagnostics {
			if a, ok := n.(*hclsyntax.Attribute); ok {
				_, d := c.operands(a.Expr, c.ctx)
				diags = merge(diags, d)
			}
			return nil
		})
	}
	explainAttributes(diags)
	return diags
}

// operands evaluates n bottom-up, each node once over its children's values, and returns
// the errors of every part of n. HCL's own evaluation skips parts over unknown facts: the
// right side of && and || when the left decides or is unknown, both branches of a
// conditional whose condition is unknown, for bodies over unknown collections, and can and
// try turn errors into values. A mistake in any of them would pass the check and make the
// rule undecided at every run. An error found here, over unknown facts, is one for every
// value the facts can take.
func (c *checker) operands(n hclsyntax.Expression, ctx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	lit := func(e hclsyntax.Expression) hclsyntax.Expression { return c.literal(e, ctx, &diags) }
	lits := func(es []hclsyntax.Expression) []hclsyntax.Expression {
		out := make([]hclsyntax.Expression, len(es))
		for i, e := range es {
			out[i] = lit(e)
		}
		return out
	}
	var node hclsyntax.Expression
	switch e := n.(type) {
	case *hclsyntax.BinaryOpExpr:
		node = &hclsyntax.BinaryOpExpr{LHS: lit(e.LHS), Op: e.Op, RHS: lit(e.RHS), SrcRange: e.SrcRange}
	case *hclsyntax.UnaryOpExpr:
		node = &hclsyntax.UnaryOpExpr{Op: e.Op, Val: lit(e.Val), SrcRange: e.SrcRange, SymbolRange: e.SymbolRange}
	case *hclsyntax.ConditionalExpr:
		node = &hclsyntax.ConditionalExpr{Condition: lit(e.Condition), TrueResult: lit(e.TrueResult), FalseResult: lit(e.FalseResult), SrcRange: e.SrcRange}
	case *hclsyntax.ParenthesesExpr:
		node = &hclsyntax.ParenthesesExpr{Expression: lit(e.Expression), SrcRange: e.SrcRange}
	case *hclsyntax.FunctionCallExpr:
		f := *e
		f.Args = lits(e.Args)
		node = &f
	case *hclsyntax.IndexExpr:
		node = &hclsyntax.IndexExpr{Collection: lit(e.Collection), Key: lit(e.Key), SrcRange: e.SrcRange, OpenRange: e.OpenRange, BracketRange: e.BracketRange}
	case *hclsyntax.RelativeTraversalExpr:
		node = &hclsyntax.RelativeTraversalExpr{Source: lit(e.Source), Traversal: e.Traversal, SrcRange: e.SrcRange}
	case *hclsyntax.SplatExpr:
		// Each holds only traversals; HCL checks them over an unknown source's element type.
		node = &hclsyntax.SplatExpr{Source: lit(e.Source), Each: e.Each, Item: e.Item, SrcRange: e.SrcRange, MarkerRange: e.MarkerRange}
	case *hclsyntax.TupleConsExpr:
		node = &hclsyntax.TupleConsExpr{Exprs: lits(e.Exprs), SrcRange: e.SrcRange, OpenRange: e.OpenRange}
	case *hclsyntax.ObjectConsExpr:
		o := &hclsyntax.ObjectConsExpr{SrcRange: e.SrcRange, OpenRange: e.OpenRange}
		for _, item := range e.Items {
			key := item.KeyExpr
			// A bare name is the key itself, as HCL reads it; any other key is an expression.
			if k, ok := key.(*hclsyntax.ObjectConsKeyExpr); ok && (k.ForceNonLiteral || hcl.ExprAsKeyword(k.Wrapped) == "") {
				key = k.Wrapped
			}
			o.Items = append(o.Items, hclsyntax.ObjectConsItem{KeyExpr: lit(key), ValueExpr: lit(item.ValueExpr)})
		}
		node = o
	case *hclsyntax.TemplateExpr:
		t := &hclsyntax.TemplateExpr{Parts: lits(e.Parts), SrcRange: e.SrcRange}
		// HCL lets an unknown value of any type through a template.
		for _, part := range t.Parts {
			if ty := part.(*hclsyntax.LiteralValueExpr).Val.Type(); !ty.IsPrimitiveType() && ty != cty.DynamicPseudoType {
				diags = append(diags, errorf(part.Range().Ptr(), "Invalid template interpolation value",
					"A string template cannot include a value of type %s; interpolate one of its attributes instead, e.g. ${facts.imds.class}.", ty.FriendlyName()))
			}
		}
		node = t
	case *hclsyntax.TemplateWrapExpr:
		node = &hclsyntax.TemplateWrapExpr{Wrapped: lit(e.Wrapped), SrcRange: e.SrcRange}
	case *hclsyntax.TemplateJoinExpr:
		node = &hclsyntax.TemplateJoinExpr{Tuple: lit(e.Tuple)}
	case *hclsyntax.ForExpr:
		node = c.forExpr(e, ctx, &diags)
	default:
		// Leaves: traversals, literals, splat items.
		node = n
	}
	// The node's own diagnostics: its children are literals that have none.
	v, d := node.Value(ctx)
	return v, append(diags, d...)
}

// literal checks e with operands, adds its diagnostics to diags, and returns what stands
// for e in its parent: a literal of its value, with its range, so that the parent's
// diagnostics point where HCL's would.
func (c *checker) literal(e hclsyntax.Expression, ctx *hcl.EvalContext, diags *hcl.Diagnostics) hclsyntax.Expression {
	if e == nil {
		return nil
	}
	v, d := c.operands(e, ctx)
	*diags = append(*diags, d...)
	if d.HasErrors() {
		v = cty.DynamicVal // reported once, where it happened
	}
	return &hclsyntax.LiteralValueExpr{Val: v, SrcRange: e.Range()}
}

// forExpr checks a for expression's body and condition once, with the loop variables
// unknown values of the collection's key and element types; HCL skips them over an
// unknown collection. It returns the for expression over the collection's value, with
// the body's values, for HCL to check that the condition is a bool.
func (c *checker) forExpr(e *hclsyntax.ForExpr, ctx *hcl.EvalContext, diags *hcl.Diagnostics) hclsyntax.Expression {
	coll := c.literal(e.CollExpr, ctx, diags)
	key, elem := cty.DynamicVal, cty.DynamicVal
	switch t := coll.(*hclsyntax.LiteralValueExpr).Val.Type(); {
	case t.IsListType():
		key, elem = cty.UnknownVal(cty.Number), cty.UnknownVal(t.ElementType())
	case t.IsSetType():
		key, elem = cty.UnknownVal(t.ElementType()), cty.UnknownVal(t.ElementType())
	case t.IsMapType():
		key, elem = cty.UnknownVal(cty.String), cty.UnknownVal(t.ElementType())
	case t.IsObjectType():
		key = cty.UnknownVal(cty.String)
	case t.IsTupleType():
		key = cty.UnknownVal(cty.Number)
	}
	body := ctx.NewChild()
	body.Variables = map[string]cty.Value{e.ValVar: elem}
	if e.KeyVar != "" {
		body.Variables[e.KeyVar] = key
	}
	f := *e
	f.CollExpr = coll
	f.KeyExpr, f.ValExpr, f.CondExpr = c.literal(e.KeyExpr, body, diags), c.literal(e.ValExpr, body, diags), c.literal(e.CondExpr, body, diags)
	return &f
}

// merge adds the diagnostics of extra that are not already in diags: the same mistake
// found by two evaluations is reported once.
func merge(diags, extra hcl.Diagnostics) hcl.Diagnostics {
	type key struct {
		summary string
		subject hcl.Range
	}
	keyOf := func(d *hcl.Diagnostic) key {
		k := key{summary: d.Summary}
		if d.Subject != nil {
			k.subject = *d.Subject
		}
		return k
	}
	seen := make(map[key]bool, len(diags))
	for _, d := range diags {
		seen[keyOf(d)] = true
	}
	for _, d := range extra {
		if k := keyOf(d); !seen[k] {
			seen[k] = true
			diags = append(diags, d)
		}
	}
	return diags
}

// ruleDecl is one decoded rule block: a full definition, or a modification (no `when`)
// that sets only the attributes it names.
type ruleDecl struct {
	rule  *Rule
	full  bool
	block *hcl.Block
	attrs hcl.Attributes
}

func (c *checker) decodeRule(block *hcl.Block) (*ruleDecl, hcl.Diagnostics) {
	name := block.Labels[0]
	var diags hcl.Diagnostics
	if !ruleNamePattern.MatchString(name) {
		diags = append(diags, errorf(block.LabelRanges[0].Ptr(), "Invalid rule name",
			"Rule names start with a letter and hold only letters, digits, _ and -, like imds_unreachable; %q does not.", name))
	}
	body, contentDiags := content(block.Body, ruleSchema)
	diags = append(diags, contentDiags...)
	r := &Rule{Name: name, Enabled: true, DeclRange: block.DefRange}
	decl := &ruleDecl{rule: r, block: block, attrs: body.Attributes}
	_, decl.full = body.Attributes["when"]
	for _, as := range ruleSchema.Attributes {
		a, ok := body.Attributes[as.Name]
		if !ok {
			continue
		}
		switch as.Name {
		case "when":
			r.When = a.Expr
			diags = append(diags, c.checkWhen(a.Expr)...)
		case "severity":
			diags = append(diags, decodeEnum(a, &r.Severity, types.SeverityInfo, types.SeverityWarning, types.SeverityCritical)...)
		case "summary":
			r.Summary = a.Expr
			diags = append(diags, c.checkString(a)...)
		case "hint":
			r.Hint = a.Expr
			diags = append(diags, c.checkString(a)...)
		case "evidence":
			r.Evidence = a.Expr
			diags = append(diags, c.checkEvidence(a)...)
		case "enabled":
			diags = append(diags, decodeBool(a, &r.Enabled)...)
		}
	}
	// A misspelt argument is reported once, not again as missing.
	if decl.full && !contentDiags.HasErrors() {
		diags = append(diags, decl.missing("severity", "summary")...)
	}
	for _, b := range body.Blocks {
		if !decl.full {
			diags = append(diags, errorf(b.DefRange.Ptr(), "Remediation in a rule modification",
				"A rule block without when modifies the attributes of an earlier rule and cannot add remediations. Define the rule in full (with when, severity and summary) to change them."))
			continue
		}
		rem, d := c.decodeRemediation(b)
		diags = append(diags, d...)
		if rem != nil {
			r.Remediations = append(r.Remediations, rem)
		}
	}
	return decl, diags
}

// missing reports each named argument the block lacks.
func (d *ruleDecl) missing(names ...string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, n := range names {
		if _, ok := d.attrs[n]; !ok {
			diags = append(diags, errorf(d.block.DefRange.Ptr(), "Missing required argument",
				"Rule %q has no %s. A rule needs when, severity and summary; a block with only some attributes (such as enabled = false) is allowed in a drop-in, where it modifies the rule of that name.", d.rule.Name, n))
		}
	}
	return diags
}

// patch applies a modification to the earlier rule: the attributes it sets replace the
// earlier ones.
func (d *ruleDecl) patch(r *Rule) {
	for name := range d.attrs {
		switch name {
		case "severity":
			r.Severity = d.rule.Severity
		case "summary":
			r.Summary = d.rule.Summary
		case "hint":
			r.Hint = d.rule.Hint
		case "evidence":
			r.Evidence = d.rule.Evidence
		case "enabled":
			r.Enabled = d.rule.Enabled
		}
	}
}

// checkWhen checks that a condition reads facts, type-checks and is a bool that depends
// on them.
func (c *checker) checkWhen(expr hcl.Expression) hcl.Diagnostics {
	v, diags := c.value(expr)
	if diags.HasErrors() {
		return diags
	}
	readsFacts := slices.ContainsFunc(expr.Variables(), func(t hcl.Traversal) bool { return t.RootName() == "facts" })
	switch {
	case !readsFacts:
		return append(diags, errorf(expr.Range().Ptr(), "Constant condition",
			"This condition reads no facts, so the rule would fire always or never. Compare a fact, e.g. facts.imds.class == \"timeout\" (docs/facts.md lists them)."))
	case v.Type() != cty.Bool && v.Type() != cty.DynamicPseudoType:
		return append(diags, errorf(expr.Range().Ptr(), "Invalid condition",
			"when must be a bool (true or false), but this is a %s. Compare it, e.g. facts.imds.status == 403.", v.Type().FriendlyName()))
	case v.IsKnown():
		return append(diags, errorf(expr.Range().Ptr(), "Constant condition",
			"This condition is %s whatever the facts are, so the rule would fire always or never.", describeKnown(v)))
	}
	return diags
}

func describeKnown(v cty.Value) string {
	switch {
	case v.IsNull():
		return "null"
	case v.True():
		return "true"
	}
	return "false"
}

// checkString checks an attribute that must give a string (summary, hint).
func (c *checker) checkString(a *hcl.Attribute) hcl.Diagnostics {
	v, diags := c.value(a.Expr)
	if diags.HasErrors() {
		return diags
	}
	if _, err := convert.Convert(v, cty.String); err != nil {
		diags = append(diags, errorf(a.Expr.Range().Ptr(), "Invalid "+a.Name,
			"%s must be a string, but this is a %s. Interpolate facts into a string instead: \"${facts.imds.class}\".", a.Name, v.Type().FriendlyName()))
	}
	return diags
}

// checkEvidence checks that evidence gives an object.
func (c *checker) checkEvidence(a *hcl.Attribute) hcl.Diagnostics {
	v, diags := c.value(a.Expr)
	if diags.HasErrors() {
		return diags
	}
	if t := v.Type(); !t.IsObjectType() && !t.IsMapType() && t != cty.DynamicPseudoType {
		diags = append(diags, errorf(a.Expr.Range().Ptr(), "Invalid evidence",
			"evidence must be an object, e.g. { class = facts.imds.class, status = facts.imds.status }, but this is a %s.", t.FriendlyName()))
	}
	return diags
}

// decodeRemediation resolves a remediate block's kind and decodes its body with the
// kind's own schema, so a bad argument is caught now rather than when the fix is due.
func (c *checker) decodeRemediation(b *hcl.Block) (*Remediation, hcl.Diagnostics) {
	kind := b.Labels[0]
	var known []string
	var spec hcldec.Spec
	ok := false
	if c.kinds != nil {
		known = c.kinds.Kinds()
		spec, ok = c.kinds.Spec(kind)
	}
	if !ok {
		detail := fmt.Sprintf("%q is not a remediation kind.", kind)
		if s := suggest(kind, known); s != "" {
			detail += fmt.Sprintf(" Did you mean %q?", s)
		}
		if len(known) == 0 {
			detail += " This build has no remediation kinds."
		} else {
			detail += fmt.Sprintf(" Known kinds: %s.", strings.Join(known, ", "))
		}
		return nil, hcl.Diagnostics{errorf(b.LabelRanges[0].Ptr(), "Unknown remediation kind", "%s", detail)}
	}
	rem := &Remediation{Kind: kind, Body: b.Body, Spec: spec, DeclRange: b.DefRange}
	// Check the top level first, where the valid argument names can be listed.
	if _, diags := content(b.Body, hcldec.ImpliedSchema(spec)); diags.HasErrors() {
		return rem, diags
	}
	_, diags := hcldec.Decode(b.Body, spec, c.ctx)
	return rem, c.bodyDiags(b.Body, diags)
}
