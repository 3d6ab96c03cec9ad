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

// Undo reverts the changes of the most recent fleet apply that made any, each option to
// the value it had before — but only options that still hold what the apply set: one
// changed since by someone else is theirs. Nothing to revert is a report without changes.
func (f *Fleet) Undo(ctx context.Context) (*Report, error) {
	start := time.Now()
	ledger := &fleetLedger{l: f.opts.Ledger, runID: f.runID}
	entries, err := ledger.l.Read()
	if err != nil {
		return nil, err
	}
	changes, err := lastApplied(entries)
	if err != nil {
		return nil, err
	}
	rep := &Report{Schema: SchemaV1, Command: CommandUndo, RunID: f.runID}
	f.opts.Progress.Start(CommandUndo, len(changes))
	defer f.opts.Progress.End()
	apis := &undoAPIs{f: f, conns: map[string]Conn{}, regions: map[string]*paced{}}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
		sem  = make(chan struct{}, workersPerScope)
	)
	for i := range changes {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c := &changes[i]
			f.undoOne(ctx, apis, c, ledger)
			mu.Lock()
			done++
			f.opts.Progress.Step(*c, done, len(changes))
			mu.Unlock()
		})
	}
	wg.Wait()
	rep.Changes = changes
	rep.Scopes = apis.scopes()
	return f.done(rep, start), nil
}

// lastApplied finds, in the ledger, the changes of the most recent run that applied any
// (or may have: an intent without a result), less those already reverted.
func lastApplied(entries []remediate.Entry) ([]Change, error) {
	lastRun := ""
	for _, e := range entries {
		if e.Change.Kind == KindMetadataOptions && (e.Phase == remediate.PhaseIntent || e.Phase == remediate.PhaseResult && e.Change.Status == types.StatusApplied) {
			lastRun = e.RunID
		}
	}
	var (
		order   []string
		byID    = map[string]remediate.Entry{}
		results = map[string]types.Status{}
		// reverted holds the changes of lastRun an undo settled after them (undo runs
		// have run IDs of their own); one that found nothing to revert settles it too.
		reverted = map[string]bool{}
	)
	for _, e := range entries {
		if e.Change.Kind != KindMetadataOptions {
			continue
		}
		switch {
		case e.RunID == lastRun && e.Phase == remediate.PhaseIntent:
			order = append(order, e.Change.ID)
			byID[e.Change.ID] = e
		case e.RunID == lastRun && e.Phase == remediate.PhaseResult:
			results[e.Change.ID] = e.Change.Status
		case e.Phase == remediate.PhaseUndoResult && byID[e.Change.ID].RunID == lastRun &&
			(e.Change.Status == types.StatusReverted || e.Change.Status == types.StatusUnchanged):
			reverted[e.Change.ID] = true
		}
	}
	var changes []Change
	for _, id := range order {
		st, hasResult := results[id]
		if hasResult && st != types.StatusApplied || reverted[id] {
			continue
		}
		e := byID[id]
		var rec record
		var before Options
		if err := json.Unmarshal(e.Change.Data, &rec); err != nil {
			return nil, fmt.Errorf("fleet ledger: change %s: %w", id, err)
		}
		if err := json.Unmarshal(e.Change.Before, &before); err != nil {
			return nil, fmt.Errorf("fleet ledger: change %s: %w", id, err)
		}
		changes = append(changes, Change{ID: id, Rules: strings.Split(e.Change.Rule, ","), Account: rec.Account, RoleARN: rec.RoleARN,
			Region: rec.Region, InstanceID: rec.InstanceID, Name: rec.Name, Before: before, Set: rec.Set, Status: types.StatusPlanned})
	}
	return changes, nil
}

// undoOne reverts one change: the options it set that still hold its values go back.
func (f *Fleet) undoOne(ctx context.Context, apis *undoAPIs, c *Change, ledger *fleetLedger) {
	api, err := apis.region(ctx, c.RoleARN, c.Region)
	if err != nil {
		c.Status, c.Error = types.StatusFailed, err.Error()
		return
	}
	page, err := api.DescribeInstances(ctx, DescribeInput{IDs: []string{c.InstanceID}})
	switch {
	case gone(err) || err == nil && len(page.Instances) == 0:
		c.Status, c.Detail = types.StatusUnchanged, "nothing to revert: the instance is gone"
		settled(c, ledger)
		return
	case err != nil:
		c.Status, c.Error = types.StatusFailed, fmt.Sprintf("read the instance's options: %v", err)
		return
	}
	now := page.Instances[0].Options
	// Only what still holds the applied value goes back.
	ours := c.Set.HeldBy(now).Inverse(c.Before).Minus(now)
	if ours.Empty() {
		c.Status, c.Detail = types.StatusUnchanged, "nothing to revert: the options no longer hold what apply set"
		settled(c, ledger)
		return
	}
	c.Detail = fmt.Sprintf("aws ec2 modify-instance-metadata-options --region %s --instance-id %s %s", c.Region, c.InstanceID, ours.Args())
	if err := ledger.append(remediate.PhaseUndoIntent, c); err != nil {
		c.Status, c.Error = types.StatusFailed, err.Error()
		return
	}
	switch after, err := api.Modify(ctx, c.InstanceID, ours); {
	case after == nil:
		c.Status, c.Error = types.StatusFailed, explain(err)
	case err != nil:
		// Accepted, not yet applied: reverted all the same, as apply counts it made.
		c.Status, c.Error = types.StatusReverted, explain(err)
	default:
		c.Status = types.StatusReverted
	}
	if err := ledger.append(remediate.PhaseUndoResult, c); err != nil && c.Error == "" {
		c.Error = err.Error()
	}
}

// settled records that undo found nothing to revert, so the next undo does not look again.
func settled(c *Change, ledger *fleetLedger) {
	if err := ledger.append(remediate.PhaseUndoResult, c); err != nil {
		c.Status, c.Error = types.StatusFailed, err.Error()
	}
}

// undoAPIs reaches the accounts and regions an undo needs, once each.
type undoAPIs struct {
	f       *Fleet
	mu      sync.Mutex
	conns   map[string]Conn
	errs    map[string]error
	regions map[string]*paced
	stats   []*scope
}

func (u *undoAPIs) region(ctx context.Context, role, region string) (*paced, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	key := role + "\x00" + region
	if api, ok := u.regions[key]; ok {
		return api, nil
	}
	conn, ok := u.conns[role]
	if !ok {
		if err := u.errs[role]; err != nil {
			return nil, err
		}
		var err error
		if conn, err = u.f.opts.Cloud.Account(ctx, role); err != nil {
			if u.errs == nil {
				u.errs = map[string]error{}
			}
			u.errs[role] = err
			u.stats = append(u.stats, &scope{Scope: Scope{Account: accountOfRole(role), RoleARN: role, Error: err.Error()}})
			return nil, err
		}
		u.conns[role] = conn
	}
	stats := &Stats{}
	api := newPaced(conn.Region(region), u.f.opts.Rates, stats)
	u.regions[key] = api
	u.stats = append(u.stats, &scope{Scope: Scope{Account: conn.ID(), RoleARN: role, Region: region}, stats: stats})
	return api, nil
}

func (u *undoAPIs) scopes() []Scope {
	var out []Scope
	for _, s := range u.stats {
		if s.stats != nil {
			s.Calls = s.stats.Calls.Load()
		}
		out = append(out, s.Scope)
	}
	return out
}
