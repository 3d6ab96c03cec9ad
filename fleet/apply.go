package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/remediate"
)

// workersPerScope bounds the changes in flight in one account and region; the limiter
// paces them, so more would only wait.
const workersPerScope = 8

// minErrorSample is how many changes an apply makes before it judges max_error_rate (or
// all it plans, when fewer): one early failure must not stop a large apply.
const minErrorSample = 20

// Apply reads the fleet, makes the planned changes — each recorded in the ledger, tried
// with DryRun, made, and polled until applied — and reports what is still open. It stops
// at the policy's max_changes and when failures pass max_error_rate.
func (f *Fleet) Apply(ctx context.Context) *Report {
	start := time.Now()
	scopes := f.gather(ctx)
	changes := f.plan(scopes)
	stopped := f.execute(ctx, scopes, changes)
	rep := f.report(CommandApply, scopes)
	rep.Changes = changes
	rep.Stopped = stopped
	return f.done(rep, start)
}

// execute makes the planned changes, scope by scope in parallel, and says why it stopped
// early, if it did.
func (f *Fleet) execute(ctx context.Context, scopes []*scope, changes []Change) string {
	planned := countPlanned(changes)
	f.opts.Progress.Start(CommandApply, planned)
	defer f.opts.Progress.End()
	lim := limits(f.opts.Policy)
	g := &gate{sample: min(minErrorSample, planned), maxRate: lim.MaxErrorRate}
	ledger := &fleetLedger{l: f.opts.Ledger, runID: f.runID}
	byScope := map[string]*scope{}
	for _, s := range scopes {
		byScope[s.Account+"/"+s.RoleARN+"/"+s.Region] = s
	}
	jobs := map[*scope]chan int{}
	var wg sync.WaitGroup
	for i := range changes {
		c := &changes[i]
		if c.Status != types.StatusPlanned {
			continue
		}
		s := byScope[c.Account+"/"+c.RoleARN+"/"+c.Region]
		ch, ok := jobs[s]
		if !ok {
			ch = make(chan int, len(changes))
			jobs[s] = ch
			for range workersPerScope {
				wg.Go(func() {
					for i := range ch {
						f.applyOne(ctx, s, &changes[i], g, ledger)
						f.opts.Progress.Step(changes[i], g.finished(), planned)
					}
				})
			}
		}
		ch <- i
	}
	for _, ch := range jobs {
		close(ch)
	}
	wg.Wait()
	return g.stopReason()
}

// gate decides whether another change may start: not after the error rate passed the
// policy's bound, nor after the ledger failed.
type gate struct {
	mu           sync.Mutex
	sample       int
	maxRate      float64
	done, failed int
	reason       string
	refused      bool // a change was not started for reason
}

func (g *gate) begin() (ok bool, reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.reason != "" {
		g.refused = true
		return false, g.reason
	}
	return true, ""
}

func (g *gate) end(c *Change) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.done++
	if c.Status == types.StatusFailed || c.Status == types.StatusApplied && c.Error != "" {
		g.failed++
	}
	if g.reason == "" && g.done >= g.sample && g.failed > 0 && float64(g.failed)/float64(g.done) > g.maxRate {
		g.reason = fmt.Sprintf("stopped: %d of %d changes failed, more than the policy's max_error_rate (%g)", g.failed, g.done, g.maxRate)
	}
}

func (g *gate) stop(reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.reason == "" {
		g.reason = reason
	}
}

func (g *gate) finished() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.done
}

// stopReason says why changes were left unmade, if any were.
func (g *gate) stopReason() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.refused {
		return ""
	}
	return g.reason
}

// applyOne makes one change and, when it took, evaluates the instance again.
func (f *Fleet) applyOne(ctx context.Context, s *scope, c *Change, g *gate, ledger *fleetLedger) {
	if err := ctx.Err(); err != nil {
		// --timeout or a signal: what has not started is left alone, unrecorded.
		c.Status, c.Error = types.StatusSkipped, "not started: "+err.Error()
		return
	}
	ok, reason := g.begin()
	if !ok {
		c.Status, c.Error = types.StatusSkipped, reason
		return
	}
	defer g.end(c)
	if err := ledger.append(remediate.PhaseIntent, c); err != nil {
		c.Status, c.Error = types.StatusFailed, err.Error()
		g.stop("stopped: " + err.Error())
		return
	}
	after, err := s.api.Modify(ctx, c.InstanceID, c.Set)
	switch {
	case after == nil && gone(err):
		c.Status, c.Error = types.StatusSkipped, "the instance is gone (terminated since it was listed): "+err.Error()
	case after == nil:
		c.Status, c.Error = types.StatusFailed, explain(err)
	default:
		// Accepted but not seen applied is made all the same (undo reverts it); the error
		// counts against max_error_rate.
		c.Status = types.StatusApplied
		if err != nil {
			c.Error = explain(err)
		}
	}
	if err := ledger.append(remediate.PhaseResult, c); err != nil {
		g.stop("stopped: " + err.Error())
	}
	f.settle(s, c, after)
}

// settle updates the instance's result after its change: applied options are evaluated
// again, a vanished instance leaves the report.
func (f *Fleet) settle(s *scope, c *Change, after *Options) {
	if c.Status != types.StatusApplied && c.Status != types.StatusSkipped {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range s.results {
		if r == nil || r.facts.Instance.ID != c.InstanceID {
			continue
		}
		if c.Status == types.StatusSkipped {
			s.results[i] = nil
			return
		}
		inst := *r.facts.Instance
		inst.Options = *after
		fa := *r.facts
		fa.Instance = &inst
		s.results[i] = f.evaluate(&fa)
		return
	}
}

// fleetLedger writes the fleet's changes to the ledger (remediate's format), one append
// at a time.
type fleetLedger struct {
	mu    sync.Mutex
	l     *remediate.Ledger
	runID string
}

// record is what undo needs of a change: where it was made and what it set.
type record struct {
	Account    string `json:"account"`
	RoleARN    string `json:"role_arn,omitempty"`
	Region     string `json:"region"`
	InstanceID string `json:"instance_id"`
	Name       string `json:"name,omitempty"`
	Set        Set    `json:"set"`
}

func (fl *fleetLedger) append(phase string, c *Change) error {
	data, err := json.Marshal(record{Account: c.Account, RoleARN: c.RoleARN, Region: c.Region, InstanceID: c.InstanceID, Name: c.Name, Set: c.Set})
	if err != nil {
		return fmt.Errorf("encode ledger record: %w", err)
	}
	before, err := json.Marshal(c.Before)
	if err != nil {
		return fmt.Errorf("encode ledger record: %w", err)
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	err = fl.l.Append(remediate.Entry{Time: time.Now().UTC(), RunID: fl.runID, Phase: phase, Change: remediate.Change{
		ID: c.ID, Rule: strings.Join(c.Rules, ","), Kind: KindMetadataOptions, Target: c.Account + "/" + c.Region + "/" + c.InstanceID,
		Detail: c.Detail, Status: c.Status, Error: c.Error, Data: data, Before: before,
	}})
	if err != nil {
		return fmt.Errorf("record the change in the fleet ledger: %w", err)
	}
	return nil
}
