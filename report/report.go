// Package report renders a run's outcome: text for people, JSON for machines, and (in the
// files beside this one) journald entries, sd_notify status and a Prometheus textfile.
package report

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/imdsmend/imdsmend/internal/redact"
	"github.com/imdsmend/imdsmend/internal/types"
)

// Schema is the JSON report's schema identifier (docs/contract.md).
const Schema = "imdsmend.report/v1"

// Report is the one value every renderer works from. Its JSON form is a public contract:
// fields may be added, never removed or renamed.
type Report struct {
	Schema     string      `json:"schema"`
	Command    string      `json:"command"`
	RunID      string      `json:"run_id"`
	Healthy    bool        `json:"healthy"`
	IMDS       *types.IMDS `json:"imds"`
	Findings   []Finding   `json:"findings"`
	Actions    []Action    `json:"actions"`
	Unknown    []Unknown   `json:"unknown"`
	DurationMS float64     `json:"duration_ms"`
}

// Finding is an open finding.
type Finding struct {
	Rule     string          `json:"rule"`
	Severity types.Severity  `json:"severity"`
	Summary  string          `json:"summary"`
	Hint     string          `json:"hint,omitempty"`
	Evidence json.RawMessage `json:"evidence"`
}

// Action is a change that was, or would be, made.
type Action struct {
	ID     string       `json:"id"`
	Rule   string       `json:"rule"`
	Kind   string       `json:"kind"`
	Target string       `json:"target"`
	Status types.Status `json:"status"`
	Detail string       `json:"detail"`
	Error  string       `json:"error,omitempty"`
	// InterruptedRun is the run that stopped (killed, disk full) between this change and
	// its result record; this run looked at the system and recorded what is true.
	InterruptedRun string `json:"interrupted_run,omitempty"`
}

// Unknown is a rule that could not be decided this run.
type Unknown struct {
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

// Exit codes (docs/contract.md).
const (
	ExitHealthy  = 0
	ExitError    = 1
	ExitFindings = 2
)

// ExitCode maps the report to the process exit code: plan exits 2 when actions are planned;
// undo exits 0 when it reverted everything asked for and 1 when it could not, whatever the
// health after it (the report shows that).
func (r *Report) ExitCode() int {
	if r.Command == string(types.CommandUndo) {
		for _, a := range r.Actions {
			// Changes of an interrupted run settled on the way were not asked for.
			if a.InterruptedRun == "" && a.Status != types.StatusReverted {
				return ExitError
			}
		}
		return ExitHealthy
	}
	if r.Command == string(types.CommandPlan) {
		for _, a := range r.Actions {
			if a.Status == types.StatusPlanned {
				return ExitFindings
			}
		}
	}
	if !r.Healthy {
		return ExitFindings
	}
	return ExitHealthy
}

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	out := *r
	// Empty lists are [] not null, so consumers can iterate without checks.
	if out.Findings == nil {
		out.Findings = []Finding{}
	}
	// A copy (never nil): the caller's actions keep their text; what is written is redacted.
	out.Actions = append([]Action{}, out.Actions...)
	for i := range out.Actions {
		out.Actions[i].Detail, out.Actions[i].Error = redact.String(out.Actions[i].Detail), redact.String(out.Actions[i].Error)
	}
	if out.Unknown == nil {
		out.Unknown = []Unknown{}
	}
	for i := range out.Findings {
		if len(out.Findings[i].Evidence) == 0 {
			out.Findings[i].Evidence = json.RawMessage("{}")
		}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	return nil
}
