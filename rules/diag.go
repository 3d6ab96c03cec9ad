package rules

import (
	"fmt"
	"slices"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// errorf builds an error diagnostic pointing at subject (which may be nil).
func errorf(subject *hcl.Range, summary, format string, args ...any) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: subject}
}

// FormatDiagnostic renders d on one line, "file:line,col: summary; detail", for journald
// and logs where the multi-line form of hcl.NewDiagnosticTextWriter does not fit.
func FormatDiagnostic(d *hcl.Diagnostic) string {
	var b strings.Builder
	if d.Subject != nil {
		fmt.Fprintf(&b, "%s:%d,%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
	}
	b.WriteString(d.Summary)
	if d.Detail != "" {
		b.WriteString("; ")
		b.WriteString(strings.Join(strings.Fields(d.Detail), " "))
	}
	return b.String()
}

// content decodes body against schema like hcl.Body.Content, and makes "unsupported"
// diagnostics name what is valid, so a typo is fixed without opening the docs.
func content(body hcl.Body, schema *hcl.BodySchema) (*hcl.BodyContent, hcl.Diagnostics) {
	c, diags := body.Content(schema)
	explainUnsupported(diags, schema)
	return c, diags
}

func explainUnsupported(diags hcl.Diagnostics, schema *hcl.BodySchema) {
	for _, d := range diags {
		switch d.Summary {
		case "Unsupported argument":
			var names []string
			for _, a := range schema.Attributes {
				names = append(names, a.Name)
			}
			d.Detail += validNames("arguments", names)
		case "Unsupported block type":
			var names []string
			for _, b := range schema.Blocks {
				names = append(names, b.Type)
			}
			d.Detail += validNames("blocks", names)
		}
	}
}

func validNames(what string, names []string) string {
	if len(names) == 0 {
		return fmt.Sprintf(" No %s are allowed here.", what)
	}
	slices.Sort(names)
	return fmt.Sprintf(" Valid %s here: %s.", what, strings.Join(names, ", "))
}

// explainAttributes completes HCL's "Unsupported attribute" diagnostics (facts.imds.clas)
// with a suggestion and the attributes the object has. HCL records the expression and
// context it was evaluating, which is enough to walk the traversal again up to the bad step.
func explainAttributes(diags hcl.Diagnostics) {
	for _, d := range diags {
		if d.Summary != "Unsupported attribute" || d.Expression == nil || d.EvalContext == nil || d.Subject == nil {
			continue
		}
		trav, td := hcl.AbsTraversalForExpr(d.Expression)
		if td.HasErrors() {
			continue
		}
		for i := 1; i < len(trav); i++ {
			step, ok := trav[i].(hcl.TraverseAttr)
			if !ok || step.SrcRange != *d.Subject {
				continue
			}
			obj, vd := trav[:i].TraverseAbs(d.EvalContext)
			if vd.HasErrors() || !obj.Type().IsObjectType() {
				break
			}
			var names []string
			for name := range obj.Type().AttributeTypes() {
				names = append(names, name)
			}
			slices.Sort(names)
			if s := suggest(step.Name, names); s != "" {
				d.Detail += fmt.Sprintf(" Did you mean %q?", s)
			}
			d.Detail += fmt.Sprintf(" %s has: %s (see docs/facts.md).", traversalString(trav[:i]), strings.Join(names, ", "))
			break
		}
	}
}

// traversalString renders a traversal as written, e.g. facts.firewall.rules[*].
func traversalString(t hcl.Traversal) string {
	var b strings.Builder
	for _, step := range t {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			b.WriteString(s.Name)
		case hcl.TraverseAttr:
			b.WriteString("." + s.Name)
		case hcl.TraverseIndex:
			if s.Key.Type() == cty.String && s.Key.IsKnown() {
				fmt.Fprintf(&b, "[%q]", s.Key.AsString())
			} else {
				b.WriteString("[*]")
			}
		default:
			b.WriteString("[*]")
		}
	}
	return b.String()
}

// suggest returns the candidate closest to name, if one is close enough to be a typo, or
// else the one candidate that name begins, such as latency_ms for latency.
func suggest(name string, candidates []string) string {
	best, bestDist := "", 3
	var prefixed []string
	for _, c := range candidates {
		if d := levenshtein.Distance(name, c, nil); d < bestDist {
			best, bestDist = c, d
		}
		if len(name) >= 3 && strings.HasPrefix(c, name) {
			prefixed = append(prefixed, c)
		}
	}
	if best == "" && len(prefixed) == 1 {
		return prefixed[0]
	}
	return best
}
