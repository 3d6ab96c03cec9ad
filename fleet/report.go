package fleet

import (
	"encoding/json"

	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/report"
)

// SchemaV1 names the JSON report of `imdsmend fleet` (docs/contract.md).
const SchemaV1 = "imdsmend.fleet/v1"

// Commands of imdsmend fleet.
const (
	CommandAudit = "audit"
	CommandPlan  = "plan"
	CommandApply = "apply"
	CommandUndo  = "undo"
)

// Report is the outcome of one fleet command, rendered as text, JSON or CSV.
type Report struct {
	Schema  string `json:"schema"`
	Command string `json:"command"`
	RunID   string `json:"run_id"`
	Healthy bool   `json:"healthy"`
	// Scopes are the accounts and regions read (or that could not be), in order.
	Scopes   []Scope   `json:"scopes"`
	Findings []Finding `json:"findings"`
	Changes  []Change  `json:"changes"`
	Unknown  []Unknown `json:"unknown"`
	Totals   Totals    `json:"totals"`
	// Stopped says why an apply stopped before making every planned change.
	Stopped    string  `json:"stopped,omitempty"`
	DurationMS float64 `json:"duration_ms"`
}

// Scope is one account in one region, or an account that could not be reached at all
// (Region empty).
type Scope struct {
	Account   string `json:"account"`
	RoleARN   string `json:"role_arn,omitempty"`
	Region    string `json:"region"`
	Instances int    `json:"instances"`
	// Pages is how many DescribeInstances pages listing the instances took.
	Pages int `json:"pages"`
	// Calls counts every EC2 API call of the run in this scope.
	Calls int64  `json:"calls"`
	Error string `json:"error,omitempty"`
}

// Finding is a rule that held for one instance.
type Finding struct {
	Rule       string          `json:"rule"`
	Severity   types.Severity  `json:"severity"`
	Summary    string          `json:"summary"`
	Hint       string          `json:"hint,omitempty"`
	Evidence   json.RawMessage `json:"evidence"`
	Account    string          `json:"account"`
	Region     string          `json:"region"`
	InstanceID string          `json:"instance_id"`
	Name       string          `json:"name"`
	Options    Options         `json:"metadata_options"`
}

// Change is one ModifyInstanceMetadataOptions an instance needs (plan), got (apply) or
// had reverted (undo).
type Change struct {
	ID         string       `json:"id"`
	Rules      []string     `json:"rules"`
	Account    string       `json:"account"`
	RoleARN    string       `json:"role_arn,omitempty"`
	Region     string       `json:"region"`
	InstanceID string       `json:"instance_id"`
	Name       string       `json:"name"`
	Before     Options      `json:"before"`
	Set        Set          `json:"set"`
	Status     types.Status `json:"status"`
	Detail     string       `json:"detail"`
	Error      string       `json:"error,omitempty"`
}

// Unknown is a rule that could not be decided for an instance.
type Unknown struct {
	Rule       string `json:"rule"`
	Account    string `json:"account"`
	Region     string `json:"region"`
	InstanceID string `json:"instance_id"`
	Reason     string `json:"reason"`
}

// Totals sum the report up.
type Totals struct {
	Instances int `json:"instances"`
	// Pages is the DescribeInstances pages that listed them.
	Pages    int            `json:"pages"`
	Findings map[string]int `json:"findings"` // by rule
	Changes  map[string]int `json:"changes"`  // by status
	// FailedScopes counts accounts and regions that could not be read.
	FailedScopes int `json:"failed_scopes"`
}

// ExitCode is the command's exit code: for undo, whether everything asked for was
// reverted; for the others, whether the fleet is healthy (and, for plan, nothing is
// planned). A run that could read no scope at all is an error.
func (r *Report) ExitCode() int {
	if r.Command == CommandUndo {
		for _, c := range r.Changes {
			if c.Status != types.StatusReverted && c.Status != types.StatusUnchanged {
				return report.ExitError
			}
		}
		return report.ExitHealthy
	}
	if len(r.Scopes) > 0 && r.Totals.FailedScopes == len(r.Scopes) {
		return report.ExitError
	}
	if !r.Healthy {
		return report.ExitFindings
	}
	if r.Command == CommandPlan {
		for _, c := range r.Changes {
			if c.Status == types.StatusPlanned {
				return report.ExitFindings
			}
		}
	}
	return report.ExitHealthy
}

// finish fills the totals and the verdict.
func (r *Report) finish() {
	t := Totals{Findings: map[string]int{}, Changes: map[string]int{}}
	healthy := len(r.Unknown) == 0 && r.Stopped == ""
	for _, s := range r.Scopes {
		t.Instances += s.Instances
		t.Pages += s.Pages
		if s.Error != "" {
			t.FailedScopes++
			healthy = false
		}
	}
	for _, f := range r.Findings {
		t.Findings[f.Rule]++
		if f.Severity != types.SeverityInfo {
			healthy = false
		}
	}
	for _, c := range r.Changes {
		t.Changes[string(c.Status)]++
		if c.Status == types.StatusFailed {
			healthy = false
		}
	}
	r.Totals, r.Healthy = t, healthy
	// Arrays, never null, as in imdsmend.report/v1.
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	if r.Changes == nil {
		r.Changes = []Change{}
	}
	if r.Unknown == nil {
		r.Unknown = []Unknown{}
	}
	if r.Scopes == nil {
		r.Scopes = []Scope{}
	}
}
