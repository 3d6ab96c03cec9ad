package rules

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Finding is a rule whose `when` held.
type Finding struct {
	Rule     string
	Severity string
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

// Evaluate runs every enabled rule (or only those named in only) over facts. A rule whose
// expressions fail at run time (e.g. its facts are null because a probe failed) is Unknown;
// other rules still run.
func (p *Policy) Evaluate(facts cty.Value, only []string) Result {
	ctx := EvalContext(facts)
	var res Result
	for _, r := range p.Rules {
		if !r.Enabled || (len(only) > 0 && !slices.Contains(only, r.Name)) {
			continue
		}
		f, reqs, err := evalRule(r, ctx)
		if err != nil {
			res.Unknown = append(res.Unknown, Unknown{Rule: r.Name, Reason: err.Error()})
			continue
		}
		if f != nil {
			res.Findings = append(res.Findings, *f)
			res.Requests = append(res.Requests, reqs...)
		}
	}
	return res
}

func evalRule(r *Rule, ctx *hcl.EvalContext) (*Finding, []Request, error) {
	when, diags := r.When.Value(ctx)
	if diags.HasErrors() {
		return nil, nil, diagsError(diags)
	}
	if when.IsNull() || !when.IsKnown() || when.Type() != cty.Bool {
		return nil, nil, fmt.Errorf("when is %s, not a known bool", describe(when))
	}
	if when.False() {
		return nil, nil, nil
	}
	f := &Finding{Rule: r.Name, Severity: r.Severity}
	var err error
	if f.Summary, err = evalString(r.Summary, ctx, "summary"); err != nil {
		return nil, nil, err
	}
	if r.Hint != nil {
		if f.Hint, err = evalString(r.Hint, ctx, "hint"); err != nil {
			return nil, nil, err
		}
	}
	if r.Evidence != nil {
		v, diags := r.Evidence.Value(ctx)
		if diags.HasErrors() {
			return nil, nil, diagsError(diags)
		}
		if f.Evidence, err = ctyjson.Marshal(v, v.Type()); err != nil {
			return nil, nil, fmt.Errorf("evidence: %w", err)
		}
	}
	var reqs []Request
	for _, rem := range r.Remediations {
		args, diags := hcldec.Decode(rem.Body, rem.Spec, ctx)
		if diags.HasErrors() {
			return nil, nil, diagsError(diags)
		}
		reqs = append(reqs, Request{Rule: r.Name, Kind: rem.Kind, Args: args})
	}
	return f, reqs, nil
}

func evalString(expr hcl.Expression, ctx *hcl.EvalContext, what string) (string, error) {
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return "", diagsError(diags)
	}
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
		return "", fmt.Errorf("%s is %s, not a string", what, describe(v))
	}
	return v.AsString(), nil
}

func describe(v cty.Value) string {
	switch {
	case !v.IsKnown():
		return "unknown"
	case v.IsNull():
		return "null"
	}
	return v.Type().FriendlyName()
}

// diagsError turns evaluation diagnostics into one error with file:line,col.
func diagsError(diags hcl.Diagnostics) error {
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		if d.Subject != nil {
			return fmt.Errorf("%s: %s: %s", d.Subject, d.Summary, d.Detail)
		}
		return fmt.Errorf("%s: %s", d.Summary, d.Detail)
	}
	return diags
}
