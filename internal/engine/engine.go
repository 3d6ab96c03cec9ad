// Package engine runs the pipeline — facts → rules → remediate → report — for the
// commands that share it (check, plan, apply, undo, watch).
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/facts/imds"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/remediate"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/rules"
)

// Options come from the command line.
type Options struct {
	PolicyFile     string
	PolicyExplicit bool
	// BuiltinPolicy replaces the default policy file when that is absent.
	BuiltinPolicy []byte
	Root          string
	StateDir      string
	Only          []string
	// Fixers is what the built-in fixers take from outside; the zero value is the real
	// system.
	Fixers remediate.Deps
}

// UnknownOnly is the summary of the diagnostic New returns when --only names a rule the
// policy lacks: a mistake in the command line, not in the policy.
const UnknownOnly = "Unknown rule in --only"

// Engine holds what one or more runs share: the policy, the fixers, the probes, the paths.
type Engine struct {
	Policy   *rules.Policy
	Registry *remediate.Registry
	Probes   []facts.Probe
	Paths    paths.Paths
	Only     []string
}

// New loads and validates the policy. Nothing runs on a policy with errors.
func New(opts Options) (*Engine, hcl.Diagnostics) {
	p := paths.New(opts.Root)
	if opts.StateDir != "" {
		p.StateDir = opts.StateDir
	}
	reg := remediate.Builtin(opts.Fixers)
	pol, diags := rules.Load(rules.LoadOptions{
		MainFile: p.File(opts.PolicyFile),
		Builtin:  opts.BuiltinPolicy,
		Explicit: opts.PolicyExplicit,
		Kinds:    reg,
		Open:     func(name string) (*os.File, error) { return p.OpenFile(p.System(name), os.O_RDONLY, 0) },
	})
	if diags.HasErrors() {
		return &Engine{Policy: pol}, diags
	}
	if err := pol.CheckOnly(opts.Only); err != nil {
		return &Engine{Policy: pol}, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: UnknownOnly, Detail: err.Error()})
	}
	// The ledger and backups are opened inside Root: links in the state directory must
	// lead where they lead on the system at Root, not on the host. (The run lock is the
	// host's: see paths.Paths.LockFile.)
	resolved, err := p.Resolve(p.StateDir)
	if err != nil {
		return &Engine{Policy: pol}, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unusable state path", Detail: err.Error()})
	}
	p.StateDir = resolved
	return &Engine{Policy: pol, Registry: reg, Probes: facts.DefaultProbes(), Paths: p, Only: opts.Only}, diags
}

// FactsConfig derives the probes' configuration from the policy and the environment.
func (e *Engine) FactsConfig() facts.Config {
	s := e.Policy.Settings
	endpoint := imds.DefaultEndpoint
	if v := os.Getenv(imds.EndpointEnv); v != "" {
		endpoint = v
	}
	return facts.Config{
		Paths: e.Paths,
		IMDS: imds.Config{
			Endpoint:   endpoint,
			V6Endpoint: imds.DefaultV6Endpoint,
			Timeouts:   imds.Timeouts{Connect: s.IMDS.Connect, Header: s.IMDS.Header, MaxAttempts: s.IMDS.MaxAttempts, Total: s.ProbeTimeout},
		},
		IPv6:    s.IPv6,
		Timeout: s.ProbeTimeout + time.Second,
		Missing: facts.MissingPrivileges(e.Paths.Root),
	}
}

// Gather runs every probe once.
func (e *Engine) Gather(ctx context.Context) *facts.Facts {
	return facts.Gather(ctx, e.FactsConfig(), e.Probes)
}

// Run is one pass of check, plan or apply.
func (e *Engine) Run(ctx context.Context, command types.Command) (*report.Report, error) {
	rep, _, err := e.run(ctx, command, nil, nil)
	return rep, err
}

// Pass is one watch pass: an apply that, given the previous pass's facts, gathers only
// the sections named and keeps the others; without them (or sections), all. IMDS is
// probed first only when the previous pass did not reach it (a recovery shows at once),
// and after every mend. It returns the facts its report was made from, for the next pass.
func (e *Engine) Pass(ctx context.Context, sections []string, prev *facts.Facts) (*report.Report, *facts.Facts, error) {
	return e.run(ctx, types.CommandApply, sections, prev)
}

// gather runs every probe, or, when prev can fill the rest, those sections name, and
// IMDS's when imds is set or prev did not reach it.
func (e *Engine) gather(ctx context.Context, sections []string, prev *facts.Facts, imds bool) *facts.Facts {
	if prev == nil || sections == nil {
		return e.Gather(ctx)
	}
	if imds || !reached(prev.IMDS) || prev.IMDSv6 != nil && !prev.IMDSv6.Reachable {
		sections = append(slices.Clone(sections), facts.ProbeIMDS)
	}
	return facts.GatherAgain(ctx, e.FactsConfig(), e.Probes, sections, prev)
}

func reached(i *types.IMDS) bool { return i != nil && i.Reachable }

func (e *Engine) run(ctx context.Context, command types.Command, sections []string, prev *facts.Facts) (*report.Report, *facts.Facts, error) {
	start := time.Now()
	rep := &report.Report{Schema: report.Schema, Command: string(command), RunID: NewRunID()}
	if command == types.CommandApply {
		// Facts, plan and changes all under the lock: facts gathered while another apply
		// was still changing the system would plan what it has already done.
		unlock, err := Lock(ctx, e.Paths.Lock())
		if err != nil {
			return nil, nil, err
		}
		defer unlock()
	}
	var settled []*remediate.Change
	if command == types.CommandApply {
		// Before the facts: a change an interrupted run made is part of the system now.
		var err error
		if settled, err = e.executor(rep.RunID, nil).Reconcile(ctx); err != nil {
			return nil, nil, err
		}
	}
	f := e.gather(ctx, sections, prev, false)
	res, err := e.evaluate(f)
	if err != nil {
		return nil, nil, err
	}
	if command == types.CommandPlan || command == types.CommandApply {
		x := e.executor(rep.RunID, f)
		var changes []*remediate.Change
		for _, req := range res.Requests {
			changes = append(changes, x.Plan(ctx, req.Rule, req.Kind, req.Args)...)
		}
		if command == types.CommandApply {
			x.Apply(ctx, changes)
			if changed(changes) {
				// Verify: the report says what is true after the fixes, not before.
				f = e.gather(ctx, sections, f, true)
				if res, err = e.evaluate(f); err != nil {
					return nil, nil, err
				}
			}
		}
		rep.Actions = actions(append(settled, changes...))
	}
	fill(rep, f, res)
	rep.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	return rep, f, nil
}

// Undo reverts recorded changes (the last run's, or those named) and re-probes.
func (e *Engine) Undo(ctx context.Context, last bool, ids []string) (*report.Report, error) {
	start := time.Now()
	rep := &report.Report{Schema: report.Schema, Command: string(types.CommandUndo), RunID: NewRunID()}
	unlock, err := Lock(ctx, e.Paths.Lock())
	if err != nil {
		return nil, err
	}
	defer unlock()
	x := e.executor(rep.RunID, nil)
	settled, err := x.Reconcile(ctx)
	if err != nil {
		return nil, err
	}
	changes, err := x.Undoable(last, ids)
	if err != nil {
		return nil, err
	}
	x.Undo(ctx, changes)
	rep.Actions = actions(append(settled, changes...))
	f := e.Gather(ctx)
	res, err := e.evaluate(f)
	if err != nil {
		return nil, err
	}
	fill(rep, f, res)
	rep.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	return rep, nil
}

// Pending lists the recorded changes that undo could still revert, oldest first.
func (e *Engine) Pending() ([]remediate.Pending, error) {
	return e.executor("", nil).Pending()
}

// Ledger returns the ledger of this engine's state directory.
func (e *Engine) Ledger() *remediate.Ledger {
	return remediate.NewLedgerIn(e.Paths, filepath.Join(e.Paths.StateDir, "ledger.jsonl"))
}

func (e *Engine) executor(runID string, f *facts.Facts) *remediate.Executor {
	s := e.Policy.Settings
	return &remediate.Executor{
		Registry: e.Registry,
		Env:      &remediate.Env{Paths: e.Paths, Facts: f, IPv6: s.IPv6, Allow: s.Allow.Permits, RestartUnits: s.Allow.RestartUnitGlobs},
		Ledger:   e.Ledger(),
		RunID:    runID,
		Enforce:  s.Mode == rules.ModeEnforce,
	}
}

func (e *Engine) evaluate(f *facts.Facts) (rules.Result, error) {
	v, err := facts.Value(f)
	if err != nil {
		return rules.Result{}, err
	}
	return e.Policy.Evaluate(v, e.Only), nil
}

func changed(changes []*remediate.Change) bool {
	for _, c := range changes {
		if c.Status == types.StatusApplied {
			return true
		}
	}
	return false
}

func actions(changes []*remediate.Change) []report.Action {
	out := make([]report.Action, 0, len(changes))
	for _, c := range changes {
		out = append(out, report.Action{ID: c.ID, Rule: c.Rule, Kind: c.Kind, Target: c.Target, Status: c.Status, Detail: c.Detail, Error: c.Error, InterruptedRun: c.Interrupted})
	}
	return out
}

// fill puts facts and evaluation results into the report and decides health: no open
// finding above info severity, and no rule left undecided.
func fill(rep *report.Report, f *facts.Facts, res rules.Result) {
	rep.IMDS = f.IMDS
	rep.Healthy = true
	for _, fd := range res.Findings {
		rep.Findings = append(rep.Findings, report.Finding{Rule: fd.Rule, Severity: fd.Severity, Summary: fd.Summary, Hint: fd.Hint, Evidence: fd.Evidence})
		if fd.Severity != types.SeverityInfo {
			rep.Healthy = false
		}
	}
	for _, u := range res.Unknown {
		rep.Unknown = append(rep.Unknown, report.Unknown{Rule: u.Rule, Reason: u.Reason})
		rep.Healthy = false
	}
}

// NewRunID returns a random identifier for one run, shared by its journal entries.
func NewRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
