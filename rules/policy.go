// Package rules loads the HCL policy, checks it against the facts schema and evaluates it
// over gathered facts into findings and remediation requests.
package rules

import (
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
)

// Severities a rule may have.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
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
}

// Settings are the policy's global knobs.
type Settings struct {
	Mode         string
	Interval     time.Duration
	ProbeTimeout time.Duration
	IPv6         bool
	Allow        Allow
}

// Allow grants each kind of change; all are denied unless granted.
type Allow struct {
	Firewall     bool // delete or restore firewall rules
	Files        bool // edit configuration files
	EC2API       bool // call EC2 APIs that change the instance
	Routes       bool // restore routes
	RestartUnits bool // restart systemd units
}

// Permission names used by fixers to say which allow switch they need.
const (
	PermFirewall     = "firewall"
	PermFiles        = "files"
	PermEC2API       = "ec2_api"
	PermRoutes       = "routes"
	PermRestartUnits = "restart_units"
)

// Permits reports whether the permission is granted; unknown permissions are denied.
func (a Allow) Permits(perm string) bool {
	switch perm {
	case PermFirewall:
		return a.Firewall
	case PermFiles:
		return a.Files
	case PermEC2API:
		return a.EC2API
	case PermRoutes:
		return a.Routes
	case PermRestartUnits:
		return a.RestartUnits
	}
	return false
}

// Rule is one `rule "NAME" { … }` block. Expressions are kept and evaluated per run.
type Rule struct {
	Name         string
	When         hcl.Expression
	Severity     string
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
