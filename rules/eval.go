package rules

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Finding is a rule whose `when` held.
type Finding struct {
	Rule     string
	Severity types.Severity
	Summary  string
	Hint     string
	Evidence json.RawMessage
}

// Request asks the fixer of Kind to act with Args (an object decoded by the kind's spec).
type Request struct {
	Rule string
	Kind string
	Args cty.Value
}

// Unknown is a rule that could not be decided, with the reason.
type Unknown struct {
	Rule   string
	Reason string
}

// Result is the outcome of evaluating a policy over facts.
type Result struct {
	Findings []Finding
	Requests []Request
	Unknown  []Unknown
}

// Evaluate runs every enabled rule (or only those named in only) over facts, a value of
// facts.Type(). A rule whose expressions fail at run time (its facts are null because a
// probe failed) is Unknown with the reason; the other rules still run. The policy must
// have loaded without errors.
func (p *Policy) Evaluate(facts cty.Value, only []string) Result {
	ctx := evalContext(facts)
	var res Result
	for _, r := range p.Rules {
		if !r.Enabled || (len(only) > 0 && !slices.Contains(only, r.Name)) {
			continue
		}
		f, reqs, err := evalRule(r, ctx)
		if err != nil {
			res.Unknown = append(res.Unknown, Unknown{Rule: r.Name, Reason: unknownReason(r, facts, err)})
			continue
		}
		if f != nil {
			res.Findings = append(res.Findings, *f)
			res.Requests = append(res.Requests, reqs...)
		}
	}
	return res
}

func evalRule(r *Rule, ctx *hcl.EvalContext) (f *Finding, reqs []Request, err error) {
	// A bug in an expression library must cost one rule, not the run.
	defer func() {
		if p := recover(); p != nil {
			f, reqs, err = nil, nil, fmt.Errorf("%s: evaluation failed: %v", r.DeclRange, p)
		}
	}()
	when, diags := r.When.Value(ctx)
	if diags.HasErrors() {
		return nil, nil, diagsError(diags)
	}
	if when.IsNull() || !when.IsKnown() || when.Type() != cty.Bool {
		return nil, nil, fmt.Errorf("%s: when is %s, not true or false", r.When.Range(), describe(when))
	}
	if when.False() {
		return nil, nil, nil
	}
	// From here on the condition held: a failure says so, since the rule did detect something.
	f = &Finding{Rule: r.Name, Severity: r.Severity}
	if f.Summary, err = evalString(r.Summary, ctx, "summary"); err != nil {
		return nil, nil, heldBut(err)
	}
	if r.Hint != nil {
		if f.Hint, err = evalString(r.Hint, ctx, "hint"); err != nil {
			return nil, nil, heldBut(err)
		}
	}
	if r.Evidence != nil {
		v, diags := r.Evidence.Value(ctx)
		if diags.HasErrors() {
			return nil, nil, heldBut(diagsError(diags))
		}
		if f.Evidence, err = ctyjson.Marshal(v, v.Type()); err != nil {
			return nil, nil, heldBut(fmt.Errorf("%s: evidence: %w", r.Evidence.Range(), err))
		}
	}
	for _, rem := range r.Remediations {
		args, diags := hcldec.Decode(rem.Body, rem.Spec, ctx)
		if diags.HasErrors() {
			return nil, nil, heldBut(diagsError(diags))
		}
		reqs = append(reqs, Request{Rule: r.Name, Kind: rem.Kind, Args: args})
	}
	return f, reqs, nil
}

func heldBut(err error) error { return fmt.Errorf("the condition held, but %w", err) }

func evalString(expr hcl.Expression, ctx *hcl.EvalContext, what string) (string, error) {
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return "", diagsError(diags)
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil || s.IsNull() || !s.IsKnown() {
		return "", fmt.Errorf("%s: %s is %s, not a string", expr.Range(), what, describe(v))
	}
	return s.AsString(), nil
}

func describe(v cty.Value) string {
	switch {
	case !v.IsKnown():
		return "unknown"
	case v.IsNull():
		return "null"
	}
	return "a " + v.Type().FriendlyName()
}

// diagsError turns evaluation diagnostics into one error, "file:line,col: summary; detail".
func diagsError(diags hcl.Diagnostics) error {
	var msgs []string
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			msgs = append(msgs, FormatDiagnostic(d))
		}
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

// unknownReason explains why a rule could not be decided. The common cause is a section
// of the facts left null by a failed probe, and the probe's own error says more than
// "attempt to get attribute from null value".
func unknownReason(r *Rule, facts cty.Value, err error) string {
	if facts.IsNull() || !facts.IsKnown() {
		return fmt.Sprintf("no facts were gathered (%v)", err)
	}
	var nulls []string
	guarded := guardedRanges(r.When)
	for _, t := range r.When.Variables() {
		if t.RootName() != "facts" || len(t) < 2 || slices.ContainsFunc(guarded, func(g hcl.Range) bool { return g.Overlaps(t.SourceRange()) }) {
			// A null read inside try() or can() is not what failed.
			continue
		}
		step, ok := t[1].(hcl.TraverseAttr)
		if !ok || !facts.Type().HasAttribute(step.Name) || slices.Contains(nulls, step.Name) {
			continue
		}
		if facts.GetAttr(step.Name).IsNull() {
			nulls = append(nulls, step.Name)
		}
	}
	if len(nulls) == 0 {
		return err.Error()
	}
	var why []string
	for _, section := range nulls {
		why = append(why, fmt.Sprintf("facts.%s is null (%s)", section, probeOutcome(facts, section)))
	}
	// The null is the cause; "attempt to get attribute from null value" would only repeat it.
	return strings.Join(why, "; ")
}

// guardedRanges are the ranges of expr's try() and can() calls.
func guardedRanges(expr hcl.Expression) []hcl.Range {
	e, ok := expr.(hclsyntax.Node)
	if !ok {
		return nil
	}
	var out []hcl.Range
	_ = hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
		if call, ok := n.(*hclsyntax.FunctionCallExpr); ok && (call.Name == "try" || call.Name == "can") {
			out = append(out, call.Range())
		}
		return nil
	})
	return out
}

// probeOutcome says what happened to the probe that fills section, from facts.probes.
func probeOutcome(facts cty.Value, section string) string {
	if !facts.Type().HasAttribute("probes") {
		return "not gathered"
	}
	probes := facts.GetAttr("probes")
	if probes.IsNull() || !probes.IsKnown() {
		return "no probe filled it"
	}
	key := cty.StringVal(section)
	if !probes.HasIndex(key).True() {
		return "no probe filled it"
	}
	pr := probes.Index(key)
	if msg := pr.GetAttr("error"); !msg.IsNull() && msg.AsString() != "" {
		return fmt.Sprintf("probe %s failed: %s", section, msg.AsString())
	}
	return fmt.Sprintf("probe %s left it empty", section)
}
