package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// TestFileSuffix names the files that hold policy tests.
const TestFileSuffix = "_test.hcl"

// TestCase is one `test "NAME" { … }` block of a *_test.hcl file: facts to evaluate the
// policy on, and the rules expected to fire.
type TestCase struct {
	Name  string
	Facts cty.Value
	// Expect lists the rules that must fire, sorted; every other rule must not.
	Expect []string
	// Unknown lists rules that must be undecided, sorted. Other rules may be undecided
	// too: those that read sections the test leaves out.
	Unknown []string
	// Remediate lists the arguments expected of remediate blocks, in file order.
	Remediate []RemediateExpect
	DeclRange hcl.Range
}

// RemediateExpect is a `remediate "RULE" "KIND" { ARG = VALUE … }` block of a test: the
// arguments rule RULE's remediate "KIND" block must evaluate to. Only the arguments
// written are compared, and inside them only the object attributes written (see
// argsMatch), so a test can name the rules a fix receives by their id alone.
type RemediateExpect struct {
	Rule, Kind string
	Args       map[string]cty.Value
	DeclRange  hcl.Range
}

// TestResult is the outcome of one test case.
type TestResult struct {
	Case     *TestCase
	Findings []string
	Unknown  []Unknown
	// Failures explain, one line each, how the outcome differs from the expectation.
	Failures []string
}

// Passed reports whether the outcome matched the expectation.
func (r TestResult) Passed() bool { return len(r.Failures) == 0 }

var testFileSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{{Type: "test", LabelNames: []string{"name"}}},
}

var testSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "facts"}, {Name: "facts_file"}, {Name: "expect", Required: true}, {Name: "unknown"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "remediate", LabelNames: []string{"rule", "kind"}}},
}

// LoadTests reads every *_test.hcl file at the top of fsys, checking the cases against p:
// facts must fit the facts schema, and expect and unknown must name rules of p. Files in
// diagnostics are named prefix/NAME. It returns the parsed files for printing diagnostics.
func LoadTests(fsys fs.FS, prefix string, p *Policy) ([]*TestCase, map[string]*hcl.File, hcl.Diagnostics) {
	files := map[string]*hcl.File{}
	names, err := fs.Glob(fsys, "*"+TestFileSuffix)
	if err != nil {
		return nil, files, hcl.Diagnostics{errorf(nil, "Cannot read tests", "list %s: %s", prefix, err)}
	}
	parser := hclparse.NewParser()
	var (
		cases []*TestCase
		diags hcl.Diagnostics
		seen  = map[string]hcl.Range{}
	)
	for _, name := range names {
		data, err := readAll(fsys, name)
		if err != nil {
			diags = append(diags, errorf(nil, "Cannot read tests", "%s: %s", path.Join(prefix, name), err))
			continue
		}
		filename := path.Join(prefix, name)
		file, ok, d := parseFile(parser, Source{filename, data})
		diags = append(diags, d...)
		if file != nil {
			files[filename] = file
		}
		if !ok {
			continue
		}
		c, d := content(file.Body, testFileSchema)
		diags = append(diags, d...)
		for _, block := range c.Blocks {
			tc, d := decodeTest(fsys, path.Dir(name), block, p)
			diags = append(diags, d...)
			if prev, dup := seen[tc.Name]; dup {
				diags = append(diags, errorf(block.LabelRanges[0].Ptr(), "Duplicate test",
					"A test named %q is already defined at %s.", tc.Name, prev))
				continue
			}
			seen[tc.Name] = block.DefRange
			cases = append(cases, tc)
		}
	}
	return cases, files, diags
}

func readAll(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicySize+1))
	if err == nil && len(data) > maxPolicySize {
		err = fmt.Errorf("larger than %d KiB", maxPolicySize>>10)
	}
	return data, err
}

func decodeTest(fsys fs.FS, dir string, block *hcl.Block, p *Policy) (*TestCase, hcl.Diagnostics) {
	tc := &TestCase{Name: block.Labels[0], DeclRange: block.DefRange, Facts: cty.NullVal(p.schema.Type)}
	body, diags := content(block.Body, testSchema)
	// Only functions, no variables: a test states its facts literally.
	ctx := &hcl.EvalContext{Functions: functions()}

	var base []byte
	if a, ok := body.Attributes["facts_file"]; ok {
		var name string
		if d := decodeString(a, &name); d.HasErrors() {
			diags = append(diags, d...)
		} else if data, err := readAll(fsys, path.Join(dir, name)); err != nil {
			diags = append(diags, errorf(a.Expr.Range().Ptr(), "Cannot read facts file",
				"%s (facts_file is relative to the test file and stays in its directory).", err))
		} else {
			base = data
		}
	}
	var overlay cty.Value
	if a, ok := body.Attributes["facts"]; ok {
		v, d := a.Expr.Value(ctx)
		diags = append(diags, d...)
		if !d.HasErrors() {
			if overlay, d = conformFacts(v, p.schema.Type, a.Expr.Range()); d.HasErrors() {
				diags = append(diags, d...)
			}
		}
	}
	if !diags.HasErrors() {
		data, err := buildFacts(base, overlay)
		if err != nil {
			diags = append(diags, errorf(block.DefRange.Ptr(), "Invalid facts", "%s", err))
		} else if tc.Facts, err = p.schema.Decode(data); err != nil {
			diags = append(diags, errorf(block.DefRange.Ptr(), "Invalid facts", "%s", err))
		}
	}
	if a, ok := body.Attributes["expect"]; ok {
		var d hcl.Diagnostics
		tc.Expect, d = ruleList(a, ctx, p)
		diags = append(diags, d...)
	}
	if a, ok := body.Attributes["unknown"]; ok {
		var d hcl.Diagnostics
		tc.Unknown, d = ruleList(a, ctx, p)
		diags = append(diags, d...)
	}
	for _, b := range body.Blocks {
		re, d := decodeRemediateExpect(b, ctx, p)
		diags = append(diags, d...)
		if re != nil {
			tc.Remediate = append(tc.Remediate, *re)
		}
	}
	return tc, diags
}

// decodeRemediateExpect reads a test's remediate block: the rule must exist and have a
// remediate block of the kind, and each argument must be one that kind takes.
func decodeRemediateExpect(b *hcl.Block, ctx *hcl.EvalContext, p *Policy) (*RemediateExpect, hcl.Diagnostics) {
	ruleName, kind := b.Labels[0], b.Labels[1]
	if d := checkRuleName(ruleName, b.LabelRanges[0].Ptr(), p); d.HasErrors() {
		return nil, d
	}
	var rem *Remediation
	var kinds []string
	for _, r := range p.Rule(ruleName).Remediations {
		kinds = append(kinds, r.Kind)
		if r.Kind == kind {
			rem = r
		}
	}
	if rem == nil {
		return nil, hcl.Diagnostics{errorf(b.LabelRanges[1].Ptr(), "Unknown remediation",
			"Rule %q has no remediate %q block; it has: %s.", ruleName, kind, list(kinds))}
	}
	attrs, diags := b.Body.JustAttributes()
	re := &RemediateExpect{Rule: ruleName, Kind: kind, Args: map[string]cty.Value{}, DeclRange: b.DefRange}
	spec, _ := rem.Spec.(*hcldec.ObjectSpec)
	for name, a := range attrs {
		if spec != nil {
			if _, ok := (*spec)[name]; !ok {
				var names []string
				for n := range *spec {
					names = append(names, n)
				}
				slices.Sort(names)
				diags = append(diags, errorf(a.NameRange.Ptr(), "Unknown argument",
					"remediate %q takes no argument %q; it takes: %s.", kind, name, strings.Join(names, ", ")))
				continue
			}
		}
		v, d := a.Expr.Value(ctx)
		diags = append(diags, d...)
		re.Args[name] = v
	}
	return re, diags
}

// checkRuleName reports a name that is not a rule of p, with a did-you-mean.
func checkRuleName(name string, rng *hcl.Range, p *Policy) hcl.Diagnostics {
	if p.Rule(name) != nil {
		return nil
	}
	var known []string
	for _, r := range p.Rules {
		known = append(known, r.Name)
	}
	detail := fmt.Sprintf("The policy has no rule %q.", name)
	if s := suggest(name, known); s != "" {
		detail += fmt.Sprintf(" Did you mean %q?", s)
	}
	return hcl.Diagnostics{errorf(rng, "Unknown rule", "%s", detail)}
}

// decodeString decodes a constant string.
func decodeString(a *hcl.Attribute, dst *string) hcl.Diagnostics {
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		return diags
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil || s.IsNull() {
		return hcl.Diagnostics{errorf(a.Expr.Range().Ptr(), "Invalid "+a.Name, "%s must be a string.", a.Name)}
	}
	*dst = s.AsString()
	return nil
}

// ruleList decodes a list of rule names, each of which must be a rule of p.
func ruleList(a *hcl.Attribute, ctx *hcl.EvalContext, p *Policy) ([]string, hcl.Diagnostics) {
	exprs, diags := hcl.ExprList(a.Expr)
	if diags.HasErrors() {
		return nil, diags
	}
	var names []string
	for _, e := range exprs {
		v, d := e.Value(ctx)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		if v.Type() != cty.String || v.IsNull() {
			diags = append(diags, errorf(e.Range().Ptr(), "Invalid rule name", "%s lists rule names as strings.", a.Name))
			continue
		}
		name := v.AsString()
		if d := checkRuleName(name, e.Range().Ptr(), p); d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return slices.Compact(names), diags
}

// conformFacts checks test facts written in HCL against the facts schema — an attribute
// the schema lacks is an error naming the valid ones — and converts each value to its
// schema type. Attributes left out are left out: buildFacts gives them zero values.
func conformFacts(v cty.Value, factsType cty.Type, rng hcl.Range) (cty.Value, hcl.Diagnostics) {
	out, err := conform(v, factsType, "facts")
	if err != nil {
		return cty.NilVal, hcl.Diagnostics{errorf(rng.Ptr(), "Invalid facts", "%s", err)}
	}
	return out, nil
}

func conform(v cty.Value, want cty.Type, at string) (cty.Value, error) {
	if v.IsNull() {
		return v, nil
	}
	t := v.Type()
	switch {
	case want.IsObjectType():
		if !t.IsObjectType() && !t.IsMapType() {
			return cty.NilVal, fmt.Errorf("%s must be an object, not a %s", at, t.FriendlyName())
		}
		attrs := map[string]cty.Value{}
		for it := v.ElementIterator(); it.Next(); {
			k, ev := it.Element()
			name := k.AsString()
			if !want.HasAttribute(name) {
				return cty.NilVal, unknownFact(at, name, want)
			}
			cv, err := conform(ev, want.AttributeType(name), at+"."+name)
			if err != nil {
				return cty.NilVal, err
			}
			attrs[name] = cv
		}
		return cty.ObjectVal(attrs), nil
	case want.IsMapType():
		if !t.IsObjectType() && !t.IsMapType() {
			return cty.NilVal, fmt.Errorf("%s must be a map, not a %s", at, t.FriendlyName())
		}
		attrs := map[string]cty.Value{}
		for it := v.ElementIterator(); it.Next(); {
			k, ev := it.Element()
			cv, err := conform(ev, want.ElementType(), fmt.Sprintf("%s[%q]", at, k.AsString()))
			if err != nil {
				return cty.NilVal, err
			}
			attrs[k.AsString()] = cv
		}
		return cty.ObjectVal(attrs), nil
	case want.IsListType():
		if !t.IsListType() && !t.IsTupleType() && !t.IsSetType() {
			return cty.NilVal, fmt.Errorf("%s must be a list, not a %s", at, t.FriendlyName())
		}
		var elems []cty.Value
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			cv, err := conform(ev, want.ElementType(), fmt.Sprintf("%s[%d]", at, len(elems)))
			if err != nil {
				return cty.NilVal, err
			}
			elems = append(elems, cv)
		}
		return cty.TupleVal(elems), nil
	}
	cv, err := convert.Convert(v, want)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s must be a %s, not a %s", at, want.FriendlyName(), t.FriendlyName())
	}
	return cv, nil
}

func unknownFact(at, name string, obj cty.Type) error {
	var names []string
	for n := range obj.AttributeTypes() {
		names = append(names, n)
	}
	slices.Sort(names)
	msg := fmt.Sprintf("%s has no attribute %q", at, name)
	if s := suggest(name, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return fmt.Errorf("%s; it has: %s (see docs/facts.md)", msg, strings.Join(names, ", "))
}

// buildFacts reads a captured facts file (JSON of `imdsmend facts --format json`) and
// replaces its sections by those the test gives in HCL, for the schema's Decode. Sections
// neither gives are null, as if their probe had failed; attributes left out of a given
// section are zero (false, 0, "", empty list), as a probe leaves them.
func buildFacts(base []byte, overlay cty.Value) ([]byte, error) {
	sections := map[string]json.RawMessage{}
	if base != nil {
		dec := json.NewDecoder(bytes.NewReader(base))
		if err := dec.Decode(&sections); err != nil {
			return nil, fmt.Errorf("facts file: %w", err)
		}
		if sections == nil {
			// JSON null decodes to a nil map without an error.
			return nil, errors.New("facts file: null, not an object of facts sections (capture it with `imdsmend facts --format json`)")
		}
	}
	if overlay != cty.NilVal && !overlay.IsNull() {
		for it := overlay.ElementIterator(); it.Next(); {
			k, v := it.Element()
			data, err := ctyjson.Marshal(v, v.Type())
			if err != nil {
				return nil, fmt.Errorf("facts.%s: %w", k.AsString(), err)
			}
			sections[k.AsString()] = data
		}
	}
	return json.Marshal(sections)
}

// RunTest evaluates the policy on the case's facts and compares what fired.
func (p *Policy) RunTest(tc *TestCase) TestResult {
	res := p.Evaluate(tc.Facts, nil)
	out := TestResult{Case: tc, Unknown: res.Unknown}
	for _, f := range res.Findings {
		out.Findings = append(out.Findings, f.Rule)
	}
	slices.Sort(out.Findings)
	var unknown []string
	for _, u := range res.Unknown {
		unknown = append(unknown, u.Rule)
	}
	slices.Sort(unknown)
	if !slices.Equal(out.Findings, tc.Expect) {
		out.Failures = append(out.Failures, fmt.Sprintf("findings: want %s, got %s", list(tc.Expect), list(out.Findings)))
		// An expected rule that stayed undecided is the usual cause; say why.
		for _, u := range res.Unknown {
			if slices.Contains(tc.Expect, u.Rule) {
				out.Failures = append(out.Failures, fmt.Sprintf("%s is unknown: %s", u.Rule, u.Reason))
			}
		}
	}
	for _, name := range tc.Unknown {
		if !slices.Contains(unknown, name) {
			out.Failures = append(out.Failures, fmt.Sprintf("unknown: want %s among the undecided rules, got %s", list(tc.Unknown), list(unknown)))
			break
		}
	}
	for _, re := range tc.Remediate {
		out.Failures = append(out.Failures, re.check(res.Requests)...)
	}
	return out
}

// check compares the expected arguments with those the rule's remediate block received.
func (re RemediateExpect) check(reqs []Request) []string {
	i := slices.IndexFunc(reqs, func(r Request) bool { return r.Rule == re.Rule && r.Kind == re.Kind })
	if i < 0 {
		return []string{fmt.Sprintf("remediate %q %q: the rule did not fire, so the fix received nothing", re.Rule, re.Kind)}
	}
	var failures []string
	names := slices.Sorted(maps.Keys(re.Args))
	for _, name := range names {
		want, got := re.Args[name], reqs[i].Args.GetAttr(name)
		if !argsMatch(want, got) {
			failures = append(failures, fmt.Sprintf("remediate %q %q: %s = %s, want %s", re.Rule, re.Kind, name, valueString(got), valueString(want)))
		}
	}
	return failures
}

// argsMatch reports whether got has what want says: objects (and maps) match when each
// attribute want writes matches got's, lists when they are as long and match element by
// element, other values when they are equal after conversion to got's type.
func argsMatch(want, got cty.Value) bool {
	switch {
	case want.IsNull() || got.IsNull():
		return want.IsNull() && got.IsNull()
	case !want.IsWhollyKnown() || !got.IsWhollyKnown():
		return false
	}
	wt, gt := want.Type(), got.Type()
	switch {
	case wt.IsObjectType() || wt.IsMapType():
		if !gt.IsObjectType() && !gt.IsMapType() {
			return false
		}
		for it := want.ElementIterator(); it.Next(); {
			k, w := it.Element()
			name := k.AsString()
			var g cty.Value
			switch {
			case gt.IsObjectType() && gt.HasAttribute(name):
				g = got.GetAttr(name)
			case gt.IsMapType() && got.HasIndex(k).True():
				g = got.Index(k)
			default:
				return false
			}
			if !argsMatch(w, g) {
				return false
			}
		}
		return true
	case wt.IsListType() || wt.IsTupleType() || wt.IsSetType():
		if !gt.IsListType() && !gt.IsTupleType() && !gt.IsSetType() || want.LengthInt() != got.LengthInt() {
			return false
		}
		ws, gs := want.AsValueSlice(), got.AsValueSlice()
		for j := range ws {
			if !argsMatch(ws[j], gs[j]) {
				return false
			}
		}
		return true
	}
	w, err := convert.Convert(want, gt)
	return err == nil && w.Equals(got).True()
}

// valueString renders a value as JSON for a failure message.
func valueString(v cty.Value) string {
	if !v.IsWhollyKnown() {
		return "(unknown)"
	}
	data, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return v.GoString()
	}
	return string(data)
}

func list(names []string) string { return "[" + strings.Join(names, ", ") + "]" }

// WriteTestResults prints results the way `go test` does — a line per case, the reasons
// of a failure indented under it, then `ok` or `FAIL` with the suite's name — and reports
// whether all passed.
func WriteTestResults(w io.Writer, suite string, results []TestResult) bool {
	failed := 0
	for _, r := range results {
		loc := fmt.Sprintf("%s:%d", r.Case.DeclRange.Filename, r.Case.DeclRange.Start.Line)
		if r.Passed() {
			fmt.Fprintf(w, "--- PASS: %s (%s)\n", r.Case.Name, loc)
			continue
		}
		failed++
		fmt.Fprintf(w, "--- FAIL: %s (%s)\n", r.Case.Name, loc)
		for _, f := range r.Failures {
			fmt.Fprintf(w, "    %s\n", f)
		}
	}
	if failed > 0 {
		fmt.Fprintf(w, "FAIL\t%s\t%d of %d tests failed\n", suite, failed, len(results))
		return false
	}
	fmt.Fprintf(w, "ok  \t%s\t%d tests\n", suite, len(results))
	return true
}
