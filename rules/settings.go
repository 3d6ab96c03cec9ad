package rules

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/gocty"
)

// defaultSettings apply where the policy is silent: enforce mode, but every change denied
// until allowed.
func defaultSettings() Settings {
	return Settings{Mode: ModeEnforce, Interval: 5 * time.Minute, ProbeTimeout: 2 * time.Second, NICInterval: time.Minute,
		Breaker: Breaker{Reapplies: 3, Window: 10 * time.Minute}}
}

// maxReapplies bounds settings.breaker.reapplies; more would let a fight go on unnoticed.
const maxReapplies = 1000

// maxIMDSAttempts bounds settings.imds.attempts: imdsmend must not hammer a throttled IMDS.
const maxIMDSAttempts = 10

var settingsSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "mode"}, {Name: "interval"}, {Name: "probe_timeout"}, {Name: "ipv6"}, {Name: "nic_interval"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "allow"}, {Type: "imds"}, {Type: "ec2"}, {Type: "breaker"}, {Type: "fleet"}},
}

var breakerSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "reapplies"}, {Name: "window"}},
}

var fleetSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "max_changes"}, {Name: "max_error_rate"}},
}

var allowSchema = func() *hcl.BodySchema {
	s := &hcl.BodySchema{}
	for _, p := range types.Permissions() {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: string(p)})
	}
	return s
}()

var imdsSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "connect_timeout"}, {Name: "header_timeout"}, {Name: "attempts"}},
}

// settingsMerger applies settings blocks in load order, attribute by attribute: a later
// file overrides exactly the attributes it sets (as Terraform override files do).
type settingsMerger struct {
	s *Settings
	// set records where each attribute (e.g. "imds.connect_timeout") was last set, for
	// the checks across attributes and their diagnostics.
	set map[string]hcl.Range
	// seen is the settings block of the file being read, to refuse a second one.
	seen map[string]hcl.Range
}

func newSettingsMerger(s *Settings) *settingsMerger {
	return &settingsMerger{s: s, set: map[string]hcl.Range{}, seen: map[string]hcl.Range{}}
}

func (m *settingsMerger) merge(block *hcl.Block) hcl.Diagnostics {
	if prev, dup := m.seen[block.DefRange.Filename]; dup {
		return hcl.Diagnostics{errorf(block.DefRange.Ptr(), "Duplicate settings block",
			"A file may hold one settings block; this file already has one at %s. Merge them.", prev)}
	}
	m.seen[block.DefRange.Filename] = block.DefRange
	c, diags := content(block.Body, settingsSchema)
	for _, as := range settingsSchema.Attributes {
		a, ok := c.Attributes[as.Name]
		if !ok {
			continue
		}
		switch as.Name {
		case "mode":
			diags = append(diags, decodeEnum(a, &m.s.Mode, ModeEnforce, ModeReport)...)
		case "interval":
			diags = append(diags, decodeDuration(a, &m.s.Interval)...)
		case "probe_timeout":
			diags = append(diags, decodeDuration(a, &m.s.ProbeTimeout)...)
		case "ipv6":
			diags = append(diags, decodeBool(a, &m.s.IPv6)...)
		case "nic_interval":
			diags = append(diags, decodeDuration(a, &m.s.NICInterval)...)
		}
		m.set[as.Name] = a.Expr.Range()
	}
	blocks := map[string]*hcl.Block{}
	for _, b := range c.Blocks {
		if prev, dup := blocks[b.Type]; dup {
			diags = append(diags, errorf(b.DefRange.Ptr(), "Duplicate "+b.Type+" block",
				"A settings block may hold one %s block; this one already has one at %s.", b.Type, prev.DefRange))
			continue
		}
		blocks[b.Type] = b
		switch b.Type {
		case "allow":
			diags = append(diags, m.mergeAllow(b)...)
		case "imds":
			diags = append(diags, m.mergeIMDS(b)...)
		case "ec2":
			diags = append(diags, m.mergeEC2(b)...)
		case "breaker":
			diags = append(diags, m.mergeBreaker(b)...)
		case "fleet":
			diags = append(diags, m.mergeFleet(b)...)
		}
	}
	return diags
}

func (m *settingsMerger) mergeAllow(block *hcl.Block) hcl.Diagnostics {
	c, diags := content(block.Body, allowSchema)
	for _, perm := range types.Permissions() {
		if a, ok := c.Attributes[string(perm)]; ok {
			if perm == types.PermRestartUnits {
				diags = append(diags, decodeRestartUnits(a, &m.s.Allow)...)
			} else {
				diags = append(diags, decodeBool(a, m.s.Allow.field(perm))...)
			}
			m.set["allow."+string(perm)] = a.Expr.Range()
		}
	}
	return diags
}

// decodeRestartUnits decodes restart_units: a bool, or a list of unit globs
// ("docker.service", "*-agent.service") that may be restarted.
func decodeRestartUnits(a *hcl.Attribute, dst *Allow) hcl.Diagnostics {
	if diags := constant(a); diags.HasErrors() {
		return diags
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		return diags
	}
	if v.Type() == cty.Bool {
		dst.RestartUnits, dst.RestartUnitGlobs = v.True(), nil
		return nil
	}
	var globs []string
	if diags := decodeValue(a.Expr, cty.List(cty.String), &globs); diags.HasErrors() {
		return hcl.Diagnostics{errorf(a.Expr.Range().Ptr(), "Invalid restart_units",
			"restart_units is true, false or a list of unit names and globs such as [\"docker.service\", \"*-agent.service\"].")}
	}
	for _, g := range globs {
		if _, err := path.Match(g, ""); err != nil || g == "" {
			return hcl.Diagnostics{errorf(a.Expr.Range().Ptr(), "Invalid restart_units",
				"%q is not a unit name or glob (path.Match syntax).", g)}
		}
	}
	// An empty list allows no unit: the permission is denied, unlike true.
	dst.RestartUnits, dst.RestartUnitGlobs = len(globs) > 0, globs
	return nil
}

func (m *settingsMerger) mergeIMDS(block *hcl.Block) hcl.Diagnostics {
	return m.mergeAttributes(block, imdsSchema, "imds.", func(a *hcl.Attribute) hcl.Diagnostics {
		switch a.Name {
		case "connect_timeout":
			return decodeDuration(a, &m.s.IMDS.Connect)
		case "header_timeout":
			return decodeDuration(a, &m.s.IMDS.Header)
		default: // attempts
			return decodeAttempts(a, &m.s.IMDS.MaxAttempts)
		}
	})
}

func (m *settingsMerger) mergeBreaker(block *hcl.Block) hcl.Diagnostics {
	return m.mergeAttributes(block, breakerSchema, "breaker.", func(a *hcl.Attribute) hcl.Diagnostics {
		if a.Name == "reapplies" {
			return decodeWhole(a, &m.s.Breaker.Reapplies, 0, maxReapplies)
		}
		return decodeDuration(a, &m.s.Breaker.Window)
	})
}

// mergeAttributes decodes each attribute of a nested settings block that sets one, in the
// schema's order, and records where it was set under prefix.
func (m *settingsMerger) mergeAttributes(block *hcl.Block, schema *hcl.BodySchema, prefix string, decode func(a *hcl.Attribute) hcl.Diagnostics) hcl.Diagnostics {
	c, diags := content(block.Body, schema)
	for _, as := range schema.Attributes {
		a, ok := c.Attributes[as.Name]
		if !ok {
			continue
		}
		diags = append(diags, decode(a)...)
		m.set[prefix+as.Name] = a.Expr.Range()
	}
	return diags
}

var ec2Schema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "region"}, {Name: "instance_id"}, {Name: "role_arn"}, {Name: "interval"}},
}

// mergeEC2 reads `ec2 { region, role_arn, interval }`.
func (m *settingsMerger) mergeEC2(block *hcl.Block) hcl.Diagnostics {
	c, diags := content(block.Body, ec2Schema)
	for _, as := range ec2Schema.Attributes {
		a, ok := c.Attributes[as.Name]
		if !ok {
			continue
		}
		if as.Name != "interval" {
			if d := constant(a); d.HasErrors() {
				diags = append(diags, d...)
				continue
			}
		}
		switch as.Name {
		case "region":
			diags = append(diags, decodeString(a, &m.s.EC2.Region)...)
		case "instance_id":
			diags = append(diags, decodeString(a, &m.s.EC2.InstanceID)...)
		case "role_arn":
			diags = append(diags, decodeString(a, &m.s.EC2.RoleARN)...)
		case "interval":
			diags = append(diags, decodeDuration(a, &m.s.EC2.Interval)...)
		}
		m.set["ec2."+as.Name] = a.Expr.Range()
	}
	return diags
}

func (m *settingsMerger) mergeFleet(block *hcl.Block) hcl.Diagnostics {
	c, diags := content(block.Body, fleetSchema)
	for _, as := range fleetSchema.Attributes {
		a, ok := c.Attributes[as.Name]
		if !ok {
			continue
		}
		var n float64
		if d := constant(a); d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		if d := decodeValue(a.Expr, cty.Number, &n); d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		switch {
		case as.Name == "max_changes" && (n < 1 || n != float64(int(n))):
			diags = append(diags, errorf(a.Expr.Range().Ptr(), "Invalid max_changes", "max_changes must be a whole number of at least 1, not %v.", n))
		case as.Name == "max_changes":
			m.s.Fleet.MaxChanges = int(n)
		case n <= 0 || n > 1:
			diags = append(diags, errorf(a.Expr.Range().Ptr(), "Invalid max_error_rate", "max_error_rate is a share of the changes, more than 0 and at most 1 (0.05 is 5 %%), not %v.", n))
		default:
			m.s.Fleet.MaxErrorRate = n
		}
	}
	return diags
}

// check runs the checks across attributes once every file is merged.
func (m *settingsMerger) check() hcl.Diagnostics {
	var diags hcl.Diagnostics
	s := m.s
	if s.ProbeTimeout >= s.Interval {
		diags = append(diags, m.conflict("probe_timeout", "interval",
			fmt.Sprintf("probe_timeout (%s) must be shorter than interval (%s).", s.ProbeTimeout, s.Interval)))
	}
	for _, t := range []struct {
		name string
		val  time.Duration
	}{{"imds.connect_timeout", s.IMDS.Connect}, {"imds.header_timeout", s.IMDS.Header}} {
		if t.val > s.ProbeTimeout {
			diags = append(diags, m.conflict(t.name, "probe_timeout",
				fmt.Sprintf("%s (%s) must not exceed probe_timeout (%s), which bounds the whole probe.", t.name, t.val, s.ProbeTimeout)))
		}
	}
	return diags
}

// conflict reports two settings that disagree at whichever of them was set (the first
// named if both were).
func (m *settingsMerger) conflict(a, b, detail string) *hcl.Diagnostic {
	subject, ok := m.set[a]
	if !ok {
		subject, ok = m.set[b]
	}
	var r *hcl.Range
	if ok {
		r = subject.Ptr()
	}
	return errorf(r, "Conflicting settings", "%s", detail)
}

// The decoders below read fixed values — settings, a rule's severity and enabled — and
// store into dst only when the value is valid, so a bad value never replaces a good one.

// constant refuses an expression that reads variables.
func constant(a *hcl.Attribute) hcl.Diagnostics {
	if vars := a.Expr.Variables(); len(vars) > 0 {
		return hcl.Diagnostics{errorf(vars[0].SourceRange().Ptr(), "Variables not allowed",
			"%s is a fixed value; it cannot read facts or other variables.", a.Name)}
	}
	return nil
}

// decodeValue decodes expr into dst, of type ty, with the diagnostics gohcl.DecodeExpression
// gives; gohcl itself would pull hclwrite and go-cmp into every run's start-up.
func decodeValue(expr hcl.Expression, ty cty.Type, dst any) hcl.Diagnostics {
	v, diags := expr.Value(nil)
	v, err := convert.Convert(v, ty)
	if err == nil {
		err = gocty.FromCtyValue(v, dst)
	}
	if err != nil {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Unsuitable value type",
			Detail:   fmt.Sprintf("Unsuitable value: %s", err),
			Subject:  expr.StartRange().Ptr(),
			Context:  expr.Range().Ptr(),
		})
	}
	return diags
}

// decodeBool decodes a constant bool.
func decodeBool(a *hcl.Attribute, dst *bool) hcl.Diagnostics {
	if diags := constant(a); diags.HasErrors() {
		return diags
	}
	var b bool
	diags := decodeValue(a.Expr, cty.Bool, &b)
	if !diags.HasErrors() {
		*dst = b
	}
	return diags
}

func decodeAttempts(a *hcl.Attribute, dst *int) hcl.Diagnostics {
	return decodeWhole(a, dst, 1, maxIMDSAttempts)
}

// decodeWhole decodes a constant whole number from lo to hi.
func decodeWhole(a *hcl.Attribute, dst *int, lo, hi int) hcl.Diagnostics {
	if diags := constant(a); diags.HasErrors() {
		return diags
	}
	var n int
	if diags := decodeValue(a.Expr, cty.Number, &n); diags.HasErrors() {
		return diags
	}
	if n < lo || n > hi {
		return hcl.Diagnostics{errorf(a.Expr.Range().Ptr(), "Invalid "+a.Name,
			"%s must be a whole number from %d to %d, not %d.", a.Name, lo, hi, n)}
	}
	*dst = n
	return nil
}

// decodeEnum decodes a constant string that must be one of allowed.
func decodeEnum[T ~string](a *hcl.Attribute, dst *T, allowed ...T) hcl.Diagnostics {
	if diags := constant(a); diags.HasErrors() {
		return diags
	}
	var s string
	if diags := decodeValue(a.Expr, cty.String, &s); diags.HasErrors() {
		return diags
	}
	for _, v := range allowed {
		if s == string(v) {
			*dst = v
			return nil
		}
	}
	quoted := make([]string, len(allowed))
	for i, v := range allowed {
		quoted[i] = fmt.Sprintf("%q", v)
	}
	return hcl.Diagnostics{errorf(a.Expr.Range().Ptr(), "Invalid "+a.Name,
		"%s must be one of %s, not %q.", a.Name, strings.Join(quoted, ", "), s)}
}

// decodeDuration decodes a constant positive Go duration string such as "30s".
func decodeDuration(a *hcl.Attribute, dst *time.Duration) hcl.Diagnostics {
	if diags := constant(a); diags.HasErrors() {
		return diags
	}
	var s string
	if diags := decodeValue(a.Expr, cty.String, &s); diags.HasErrors() {
		return diags
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return hcl.Diagnostics{errorf(a.Expr.Range().Ptr(), "Invalid duration",
			"%s must be a positive duration such as \"500ms\", \"30s\" or \"5m\", not %q.", a.Name, s)}
	}
	*dst = d
	return nil
}
