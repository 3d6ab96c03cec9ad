// Package rules loads the HCL policy, checks it against the facts schema and evaluates it
// over gathered facts into findings and remediation requests. It also runs the policy's own
// tests (*_test.hcl). The language is described in docs/policy.md.
package rules

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/imdsmend/imdsmend/facts/imds"
	"github.com/imdsmend/imdsmend/internal/types"
)

// Modes of settings.mode.
const (
	ModeEnforce = "enforce"
	ModeReport  = "report"
)

// Policy is a loaded, validated policy.
type Policy struct {
	Settings Settings
	// Rules in the order they were first defined; later drop-ins replace by name in place.
	Rules []*Rule
	// Files holds the parsed sources by name, for printing diagnostics with source lines.
	Files map[string]*hcl.File
	// Sources names the files the policy was read from, main file first.
	Sources []string
	// schema is what its expressions read as facts; its tests are written in it too.
	schema *Schema
}

// Rule returns the rule called name, or nil.
func (p *Policy) Rule(name string) *Rule {
	for _, r := range p.Rules {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// CheckOnly reports an error naming every entry of only (--only) that is not a rule of
// the policy, so a typo does not silently evaluate nothing.
func (p *Policy) CheckOnly(only []string) error {
	names := make([]string, 0, len(p.Rules))
	for _, r := range p.Rules {
		names = append(names, r.Name)
	}
	slices.Sort(names)
	var msgs []string
	for _, name := range only {
		if p.Rule(name) != nil {
			continue
		}
		msg := fmt.Sprintf("The policy has no rule %q.", name)
		if s := suggest(name, names); s != "" {
			msg += fmt.Sprintf(" Did you mean %q?", s)
		}
		msgs = append(msgs, msg)
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("--only: %s Its rules: %s", strings.Join(msgs, " "), strings.Join(names, ", "))
}

// Settings are the policy's global knobs.
type Settings struct {
	Mode         string
	Interval     time.Duration
	ProbeTimeout time.Duration
	IPv6         bool
	// NICInterval is how often `imdsmend watch` samples the ENA counters between passes.
	NICInterval time.Duration
	// IMDS holds the finer bounds of the IMDS client from `settings { imds { … } }`;
	// Total is left zero: probe_timeout bounds the whole probe. Zero fields take the
	// client's defaults.
	IMDS  imds.Timeouts
	Allow Allow
	// EC2 is `settings { ec2 { … } }`: where and as whom the EC2 API is called.
	EC2 EC2Settings
	// Breaker is settings.breaker: when a fix something else keeps undoing stops being
	// applied (remediate.Breaker).
	Breaker Breaker
	// Fleet bounds `imdsmend fleet apply` (settings { fleet { … } }); other commands
	// ignore it.
	Fleet FleetLimits
}

// FleetLimits stop a fleet apply before it changes too much or fails too often; zero
// fields are unset, and `imdsmend fleet` takes its own defaults for them.
type FleetLimits struct {
	// MaxChanges is how many instances one apply may change.
	MaxChanges int
	// MaxErrorRate is the share of failed changes (0 to 1) at which an apply stops.
	MaxErrorRate float64
}

// EC2Settings are the EC2 API's settings; the calls are made only with allow.ec2_api.
type EC2Settings struct {
	// Region and InstanceID are used before the instance's own sources (facts.identity;
	// an instance ID IMDS answers with comes first).
	Region     string
	InstanceID string
	// RoleARN is assumed (sts:AssumeRole) with the credentials found.
	RoleARN string
	// Interval is how long an answer of the API is kept in state.json in place of a call;
	// zero means settings.interval.
	Interval time.Duration
}

// Breaker bounds how often one fix is re-applied: more than Reapplies times within
// Window, and it is held until `imdsmend reset` or a policy change.
type Breaker struct {
	Reapplies int
	Window    time.Duration
}

// Allow grants each kind of change; all are denied unless granted.
type Allow struct {
	Firewall     bool // delete or restore firewall rules
	Files        bool // edit configuration files
	EC2API       bool // call EC2 APIs that change the instance
	Routes       bool // restore routes
	RestartUnits bool // restart systemd units
	Reboot       bool // reboot the instance (cloud_init_rerun)
	// RestartUnitGlobs is restart_units given as a list: the units (shell globs) that may be
	// restarted. Nil with RestartUnits means `true`: units whose own files set the proxy.
	RestartUnitGlobs []string
}

// field returns the switch of perm, or nil for an unknown permission.
func (a *Allow) field(perm types.Permission) *bool {
	switch perm {
	case types.PermFirewall:
		return &a.Firewall
	case types.PermFiles:
		return &a.Files
	case types.PermEC2API:
		return &a.EC2API
	case types.PermRoutes:
		return &a.Routes
	case types.PermRestartUnits:
		return &a.RestartUnits
	case types.PermReboot:
		return &a.Reboot
	}
	return nil
}

// Permits reports whether the permission is granted; unknown permissions are denied.
func (a Allow) Permits(perm types.Permission) bool {
	if f := a.field(perm); f != nil {
		return *f
	}
	return false
}

// Rule is one `rule "NAME" { … }` block. Expressions are kept and evaluated per run.
type Rule struct {
	Name         string
	When         hcl.Expression
	Severity     types.Severity
	Summary      hcl.Expression
	Hint         hcl.Expression // optional: what to do next
	Evidence     hcl.Expression // optional: object shown with the finding
	Enabled      bool
	Remediations []*Remediation
	DeclRange    hcl.Range
}

// Remediation is one `remediate "KIND" { … }` block inside a rule.
type Remediation struct {
	Kind      string
	Body      hcl.Body
	Spec      hcldec.Spec
	DeclRange hcl.Range
}

// Kinds is what the policy needs from the fixer registry: the schema of each kind's body.
type Kinds interface {
	Spec(kind string) (hcldec.Spec, bool)
	Kinds() []string
}
