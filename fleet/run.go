package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/rules"
)

// Audit reads the fleet and reports every finding.
func (f *Fleet) Audit(ctx context.Context) *Report {
	start := time.Now()
	scopes := f.gather(ctx)
	rep := f.report(CommandAudit, scopes)
	return f.done(rep, start)
}

// Plan reads the fleet and lists the changes Apply would make, in the same order and
// with the same IDs: those beyond max_changes, or that the policy does not allow, are
// skipped with the reason.
func (f *Fleet) Plan(ctx context.Context) *Report {
	start := time.Now()
	scopes := f.gather(ctx)
	rep := f.report(CommandPlan, scopes)
	rep.Changes = f.plan(scopes)
	return f.done(rep, start)
}

func (f *Fleet) done(rep *Report, start time.Time) *Report {
	redactReport(rep)
	rep.finish()
	rep.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	return rep
}

// report turns the scopes' results into a report's scopes, findings and unknown rules.
func (f *Fleet) report(command string, scopes []*scope) *Report {
	rep := &Report{Schema: SchemaV1, Command: command, RunID: f.runID}
	for _, s := range scopes {
		rep.Scopes = append(rep.Scopes, s.Scope)
		for _, r := range s.results {
			if r == nil {
				continue // a vanished instance
			}
			rep.Findings = append(rep.Findings, findingsOf(s, r)...)
			for _, u := range r.unknown {
				rep.Unknown = append(rep.Unknown, Unknown{Rule: u.Rule, Account: s.Account, Region: s.Region, InstanceID: r.facts.Instance.ID, Reason: u.Reason})
			}
		}
	}
	return rep
}

func findingsOf(s *scope, r *result) []Finding {
	inst := r.facts.Instance
	out := make([]Finding, 0, len(r.findings))
	for _, fd := range r.findings {
		ev := fd.Evidence
		if len(ev) == 0 {
			ev = []byte("{}")
		}
		out = append(out, Finding{Rule: fd.Rule, Severity: fd.Severity, Summary: fd.Summary, Hint: fd.Hint, Evidence: ev,
			Account: s.Account, Region: s.Region, InstanceID: inst.ID, Name: inst.Name, Options: inst.Options})
	}
	return out
}

// plan lists the changes the results ask for, planned or skipped with the reason.
func (f *Fleet) plan(scopes []*scope) []Change {
	settings := f.opts.Policy.Settings
	lim := limits(f.opts.Policy)
	var changes []Change
	planned := 0
	for _, s := range scopes {
		for _, r := range s.results {
			if r == nil || r.set.Empty() {
				continue
			}
			c := newChange(s, r)
			switch {
			case settings.Mode == rules.ModeReport:
				c.Status, c.Error = types.StatusSkipped, `the policy is in mode = "report": nothing is changed`
			case !settings.Allow.Permits(types.PermEC2API):
				c.Status, c.Error = types.StatusSkipped, "not allowed by the policy: set settings { allow { ec2_api = true } } to permit it"
			case planned >= lim.MaxChanges:
				c.Status, c.Error = types.StatusSkipped, fmt.Sprintf("beyond the policy's max_changes (%d) for one apply: run it again, or raise settings { fleet { max_changes } }", lim.MaxChanges)
			default:
				planned++
			}
			changes = append(changes, c)
		}
	}
	return changes
}

func countPlanned(cs []Change) int {
	n := 0
	for _, c := range cs {
		if c.Status == types.StatusPlanned {
			n++
		}
	}
	return n
}

func newChange(s *scope, r *result) Change {
	inst := r.facts.Instance
	return Change{
		ID: changeID(s.Account, s.Region, inst.ID, r.set), Rules: r.rules,
		Account: s.Account, RoleARN: s.RoleARN, Region: s.Region, InstanceID: inst.ID, Name: inst.Name,
		Before: inst.Options, Set: r.set, Status: types.StatusPlanned,
		Detail: fmt.Sprintf("aws ec2 modify-instance-metadata-options --region %s --instance-id %s %s", s.Region, inst.ID, r.set.Args()),
	}
}

// changeID is KIND- and 10 hex digits, the same for the same change in plan and apply.
func changeID(account, region, instance string, set Set) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{account, region, instance, set.Args()}, "\x00")))
	return KindMetadataOptions + "-" + hex.EncodeToString(sum[:5])
}
