package rules

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
)

// Source is one policy file's name and bytes.
type Source struct {
	Name string
	Data []byte
}

// LoadOptions says where the policy comes from.
type LoadOptions struct {
	// MainFile is the main policy file; drop-ins come from policy.d/ beside it.
	MainFile string
	// Builtin replaces MainFile when it is absent and Explicit is false.
	Builtin []byte
	// Explicit is set when the user named MainFile, which then must exist.
	Explicit bool
	Kinds    Kinds
}

// BuiltinName is the file name diagnostics use for the embedded default policy.
const BuiltinName = "<built-in>/policy.hcl"

// Load reads the main policy and its drop-ins, then parses and validates them together.
func Load(opts LoadOptions) (*Policy, hcl.Diagnostics) {
	sources, err := readSources(opts)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read policy", Detail: err.Error()}}
	}
	return Parse(sources, opts.Kinds)
}

func readSources(opts LoadOptions) ([]Source, error) {
	var sources []Source
	data, err := os.ReadFile(opts.MainFile)
	switch {
	case err == nil:
		sources = append(sources, Source{Name: opts.MainFile, Data: data})
	case errors.Is(err, fs.ErrNotExist) && !opts.Explicit && opts.Builtin != nil:
		sources = append(sources, Source{Name: BuiltinName, Data: opts.Builtin})
	default:
		return nil, fmt.Errorf("read policy %s: %w", opts.MainFile, err)
	}
	dropDir := filepath.Join(filepath.Dir(opts.MainFile), "policy.d")
	entries, err := os.ReadDir(dropDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read drop-in directory %s: %w", dropDir, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".hcl") && !strings.HasSuffix(e.Name(), "_test.hcl") && !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dropDir, n)
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read drop-in %s: %w", p, err)
		}
		sources = append(sources, Source{Name: p, Data: data})
	}
	return sources, nil
}

var policySchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "settings"},
		{Type: "rule", LabelNames: []string{"name"}},
	},
}

var ruleSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "when", Required: true},
		{Name: "severity", Required: true},
		{Name: "summary", Required: true},
		{Name: "hint"},
		{Name: "evidence"},
		{Name: "enabled"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "remediate", LabelNames: []string{"kind"}}},
}

type settingsBody struct {
	Mode         *string    `hcl:"mode"`
	Interval     *string    `hcl:"interval"`
	ProbeTimeout *string    `hcl:"probe_timeout"`
	IPv6         *bool      `hcl:"ipv6"`
	Allow        *allowBody `hcl:"allow,block"`
}

type allowBody struct {
	Firewall     *bool `hcl:"firewall"`
	Files        *bool `hcl:"files"`
	EC2API       *bool `hcl:"ec2_api"`
	Routes       *bool `hcl:"routes"`
	RestartUnits *bool `hcl:"restart_units"`
}

// DefaultSettings apply where the policy is silent: report-only is not the default, but
// every change is denied until allowed.
func DefaultSettings() Settings {
	return Settings{Mode: ModeEnforce, Interval: 5 * time.Minute, ProbeTimeout: 2 * time.Second}
}

// Parse parses sources in order (main first, then drop-ins) into one policy.
func Parse(sources []Source, kinds Kinds) (*Policy, hcl.Diagnostics) {
	parser := hclparse.NewParser()
	p := &Policy{Settings: DefaultSettings(), Files: map[string]*hcl.File{}}
	var diags hcl.Diagnostics
	byName := map[string]int{}
	for _, src := range sources {
		file, d := parser.ParseHCL(src.Data, src.Name)
		diags = append(diags, d...)
		if file == nil {
			continue
		}
		p.Files[src.Name] = file
		content, d := file.Body.Content(policySchema)
		diags = append(diags, d...)
		for _, block := range content.Blocks {
			switch block.Type {
			case "settings":
				diags = append(diags, decodeSettings(block, &p.Settings)...)
			case "rule":
				r, d := decodeRule(block, kinds)
				diags = append(diags, d...)
				if r == nil {
					continue
				}
				if i, ok := byName[r.Name]; ok {
					p.Rules[i] = r
				} else {
					byName[r.Name] = len(p.Rules)
					p.Rules = append(p.Rules, r)
				}
			}
		}
	}
	return p, diags
}

func decodeSettings(block *hcl.Block, s *Settings) hcl.Diagnostics {
	var body settingsBody
	diags := gohcl.DecodeBody(block.Body, nil, &body)
	if diags.HasErrors() {
		return diags
	}
	if body.Mode != nil {
		if *body.Mode != ModeEnforce && *body.Mode != ModeReport {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid mode",
				Detail: fmt.Sprintf("mode must be %q or %q, not %q.", ModeEnforce, ModeReport, *body.Mode), Subject: block.DefRange.Ptr()})
		}
		s.Mode = *body.Mode
	}
	for _, d := range []struct {
		val *string
		dst *time.Duration
		key string
	}{{body.Interval, &s.Interval, "interval"}, {body.ProbeTimeout, &s.ProbeTimeout, "probe_timeout"}} {
		if d.val == nil {
			continue
		}
		v, err := time.ParseDuration(*d.val)
		if err != nil || v <= 0 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid duration",
				Detail: fmt.Sprintf("%s must be a positive duration such as \"30s\" or \"5m\", not %q.", d.key, *d.val), Subject: block.DefRange.Ptr()})
			continue
		}
		*d.dst = v
	}
	if body.IPv6 != nil {
		s.IPv6 = *body.IPv6
	}
	if a := body.Allow; a != nil {
		for _, sw := range []struct {
			val *bool
			dst *bool
		}{{a.Firewall, &s.Allow.Firewall}, {a.Files, &s.Allow.Files}, {a.EC2API, &s.Allow.EC2API}, {a.Routes, &s.Allow.Routes}, {a.RestartUnits, &s.Allow.RestartUnits}} {
			if sw.val != nil {
				*sw.dst = *sw.val
			}
		}
	}
	return diags
}

func decodeRule(block *hcl.Block, kinds Kinds) (*Rule, hcl.Diagnostics) {
	content, diags := block.Body.Content(ruleSchema)
	r := &Rule{Name: block.Labels[0], Enabled: true, DeclRange: block.DefRange}
	if a, ok := content.Attributes["when"]; ok {
		r.When = a.Expr
	}
	if a, ok := content.Attributes["summary"]; ok {
		r.Summary = a.Expr
	}
	if a, ok := content.Attributes["hint"]; ok {
		r.Hint = a.Expr
	}
	if a, ok := content.Attributes["evidence"]; ok {
		r.Evidence = a.Expr
	}
	if a, ok := content.Attributes["severity"]; ok {
		diags = append(diags, gohcl.DecodeExpression(a.Expr, nil, &r.Severity)...)
		switch r.Severity {
		case SeverityInfo, SeverityWarning, SeverityCritical, "":
		default:
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid severity",
				Detail: fmt.Sprintf("severity must be %q, %q or %q.", SeverityInfo, SeverityWarning, SeverityCritical), Subject: a.Expr.Range().Ptr()})
		}
	}
	if a, ok := content.Attributes["enabled"]; ok {
		var v cty.Value
		v, d := a.Expr.Value(nil)
		diags = append(diags, d...)
		if !d.HasErrors() && v.Type() == cty.Bool && v.IsKnown() && !v.IsNull() {
			r.Enabled = v.True()
		}
	}
	for _, b := range content.Blocks {
		kind := b.Labels[0]
		spec, ok := kinds.Spec(kind)
		if !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown remediation kind",
				Detail: fmt.Sprintf("%q is not a remediation kind; known kinds: %s.", kind, strings.Join(kinds.Kinds(), ", ")), Subject: b.LabelRanges[0].Ptr()})
			continue
		}
		r.Remediations = append(r.Remediations, &Remediation{Kind: kind, Body: b.Body, Spec: spec, DeclRange: b.DefRange})
	}
	return r, diags
}
