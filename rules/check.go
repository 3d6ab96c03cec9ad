package rules

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
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
	// sample has every list and map of the facts hold one unknown element, so that the
	// bodies of for expressions, which HCL skips over unknown collections, are checked too.
	sample *hcl.EvalContext
}

func newChecker(kinds Kinds) *checker {
	// The facts variable itself is never null, only its sections can be.
	return &checker{
		kinds:  kinds,
		ctx:    evalContext(cty.UnknownVal(factsType()).RefineNotNull()),
		sample: evalContext(sampleFacts()),
	}
}

// sampleFacts is built once: it depends only on the facts type.
var sampleFacts = sync.OnceValue(func() cty.Value { return sampleValue(factsType()) })

// sampleValue is a value of type t whose lists and maps hold one unknown element each.
func sampleValue(t cty.Type) cty.Value {
	switch {
	case t.IsObjectType():
		attrs := map[string]cty.Value{}
		for name, at := range t.AttributeTypes() {
			attrs[name] = sampleValue(at)
		}
		return cty.ObjectVal(attrs)
	case t.IsListType():
		return cty.ListVal([]cty.Value{sampleValue(t.ElementType())})
	case t.IsMapType():
		return cty.MapVal(map[string]cty.Value{"*": sampleValue(t.ElementType())})
	}
	return cty.UnknownVal(t)
}

// value evaluates expr for checking: its result comes from the unknown facts, and
// deepChecks adds the errors that evaluation alone misses.
func (c *checker) value(expr hcl.Expression) (cty.Value, hcl.Diagnostics) {
	v, diags := expr.Value(c.ctx)
	return v, c.deeper(expr, diags, func(ctx *hcl.EvalContext) hcl.Diagnostics {
		_, d := expr.Value(ctx)
		return d
	})
}

// deeper completes diags, from evaluating the expression or body n over the unknown facts,
// with what deepChecks finds and, when n has loops, with what eval finds over the sample
// facts; then it explains unsupported attributes.
func (c *checker) deeper(n any, diags hcl.Diagnostics, eval func(*hcl.EvalContext) hcl.Diagnostics) hcl.Diagnostics {
	if n, ok := n.(hclsyntax.Node); ok {
		extra, loops := c.deepChecks(n)
		diags = appendTypeErrors(diags, extra)
		if loops {
			diags = appendTypeErrors(diags, eval(c.sample))
		}
	}
	explainAttributes(diags)
	return diags
}

// deepChecks walks the syntax once for what evaluating over unknown facts misses, and
// reports whether n has for expressions or splats, whose bodies HCL skips over unknown
// collections; the caller then evaluates n over the sample facts too. It finds:
//   - template interpolations of values with no text form, such as "${facts.imds}": HCL
//     lets an unknown value through a template without checking its type;
//   - type errors in the arguments of can and try, which turn every error into a value: a
//     misspelt fact there would silently make can() false for ever.
func (c *checker) deepChecks(n hclsyntax.Node) (diags hcl.Diagnostics, loops bool) {
	hclsyntax.VisitAll(n, func(n hclsyntax.Node) hcl.Diagnostics {
		switch n := n.(type) {
		case *hclsyntax.ForExpr, *hclsyntax.SplatExpr:
			loops = true
		case *hclsyntax.TemplateExpr:
			for _, part := range n.Parts {
				v, d := part.Value(c.ctx)
				if d.HasErrors() {
					continue // reported where the expression itself is evaluated
				}
				if t := v.Type(); !t.IsPrimitiveType() && t != cty.DynamicPseudoType {
					diags = append(diags, errorf(part.Range().Ptr(), "Invalid template interpolation value",
						"A string template cannot include a value of type %s; interpolate one of its attributes instead, e.g. ${facts.imds.class}.", t.FriendlyName()))
				}
			}
		case *hclsyntax.FunctionCallExpr:
			if n.Name != "can" && n.Name != "try" {
				break
			}
			for _, arg := range n.Args {
				_, d := arg.Value(c.ctx)
				diags = appendTypeErrors(diags, d)
				_, d = arg.Value(c.sample)
				diags = appendTypeErrors(diags, d)
			}
		}
		return nil
	})
	return diags, loops
}

// appendTypeErrors adds the diagnostics of extra that depend only on types — the sample
// facts have values no real facts have — and are not already in diags.
func appendTypeErrors(diags, extra hcl.Diagnostics) hcl.Diagnostics {
	for _, d := range extra {
		if d.Summary != "Unsupported attribute" && d.Summary != "Invalid template interpolation value" {
			continue
		}
		dup := slices.ContainsFunc(diags, func(e *hcl.Diagnostic) bool {
			return e.Summary == d.Summary && e.Subject != nil && d.Subject != nil && *e.Subject == *d.Subject
		})
		if !dup {
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
			diags = append(diags, decodeEnum(a, &r.Severity, SeverityInfo, SeverityWarning, SeverityCritical)...)
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
	return rem, c.deeper(b.Body, diags, func(ctx *hcl.EvalContext) hcl.Diagnostics {
		_, d := hcldec.Decode(b.Body, spec, ctx)
		return d
	})
}
