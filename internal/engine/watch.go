package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/facts/nic"
	"github.com/imdsmend/imdsmend/internal/events"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/report"
)

// Trigger asks the watch loop for a pass. The timer is one source of triggers; event
// sources (internal/events: route changes over netlink, nftables transactions, legacy
// tables polled, proxy files over inotify) are others, each running on its own, debounced,
// and sending on Watch.Triggers. A trigger names the fact sections its change can touch;
// the pass re-gathers those and IMDS, and keeps the rest from the previous pass. Triggers
// that arrive while a pass runs merge into one pass after it, so a burst of events costs
// one pass, not one each.
type Trigger = events.Trigger

// Built-in trigger sources.
const (
	TriggerStart  = "start"
	TriggerTimer  = "timer"
	TriggerReload = "reload"
	// TriggerNIC: linklocal_allowance_exceeded rose since the previous NIC sample.
	TriggerNIC = "nic"
)

// WatchObserver is told what the loop does; the command wires it to journald, sd_notify
// and the metrics file. The loop calls it from one goroutine, one call at a time.
type WatchObserver interface {
	// Pass reports a finished pass: its report, or the error that stopped it.
	Pass(rep *report.Report, t Trigger, err error)
	// Reloading is called when a reload starts; Reloaded or ReloadRejected follows.
	Reloading()
	// Reloaded: the new policy is in force from the next pass on.
	Reloaded(e *Engine, diags hcl.Diagnostics)
	// ReloadRejected: the new policy has errors; the loop keeps the old one.
	ReloadRejected(policy map[string]*hcl.File, diags hcl.Diagnostics)
	// Watchdog: the loop is alive (called every Watch.WatchdogInterval).
	Watchdog()
	// Stopping: the loop was asked to stop and is ending the running pass, if any.
	Stopping()
}

// Watch is the loop of `imdsmend watch`: an apply pass at start, then one at the policy's
// interval (with jitter) or whenever a trigger arrives, until ctx ends. A timed, start or
// reload pass gathers every fact; a triggered one only what its trigger names.
type Watch struct {
	Engine *Engine
	// Load builds a new engine from the policy on disk (New with the same options); it
	// runs when Reload receives (SIGHUP).
	Load   func() (*Engine, hcl.Diagnostics)
	Reload <-chan os.Signal
	// Triggers carries passes asked for by event sources; nil when there are none.
	Triggers <-chan Trigger
	Observer WatchObserver
	// PassTimeout bounds one pass.
	PassTimeout time.Duration
	// StopTimeout bounds how long a cancelled pass may take to end, on stop; a pass that
	// overruns PassTimeout by this much is hung, and the watchdog stops answering.
	StopTimeout time.Duration
	// WatchdogInterval is how often to call Observer.Watchdog; 0 for never.
	WatchdogInterval time.Duration
	// Delay turns the policy's interval into the wait before the next pass; nil for
	// Jitter.
	Delay func(interval time.Duration) time.Duration
	// NICTicker ticks every settings.nic_interval for the NIC samples; nil for a
	// time.Ticker. It returns the ticks and how to stop them.
	NICTicker func(d time.Duration) (<-chan time.Time, func())
	// SampleNIC reads the ENA counters between passes; nil for nic.Sample.
	SampleNIC func(ctx context.Context) ([]nic.Interface, error)
}

func newTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// Jitter spreads passes of a fleet's instances: a random wait within ±10% of interval.
func Jitter(interval time.Duration) time.Duration {
	spread := int64(interval / 5)
	if spread <= 0 {
		return interval
	}
	return interval - interval/10 + time.Duration(rand.Int64N(spread+1))
}

type passResult struct {
	rep     *report.Report
	facts   *facts.Facts
	err     error
	trigger Trigger
}

// Run runs the loop until ctx ends. It returns nil on a clean stop, an error when the
// running pass did not end within StopTimeout.
func (w *Watch) Run(ctx context.Context) error {
	l := &watchLoop{Watch: w, engine: w.Engine, delay: w.Delay, timer: time.NewTimer(0)}
	if l.delay == nil {
		l.delay = Jitter
	}
	if l.NICTicker == nil {
		l.NICTicker = newTicker
	}
	if l.SampleNIC == nil {
		l.SampleNIC = nic.Sample
	}
	l.timer.Stop()
	defer l.timer.Stop()
	l.tickNIC()
	defer func() { l.nicStop() }()
	var watchdog <-chan time.Time
	if w.WatchdogInterval > 0 {
		t := time.NewTicker(w.WatchdogInterval)
		defer t.Stop()
		watchdog = t.C
	}
	l.start(Trigger{Source: TriggerStart})
	for {
		select {
		case <-ctx.Done():
			return l.stop()
		case r := <-l.done:
			l.finished(r)
		case <-l.timer.C:
			l.ask(Trigger{Source: TriggerTimer})
		case <-l.nicC:
			if l.sampleNIC(ctx) {
				l.ask(Trigger{Source: TriggerNIC})
			}
		case t := <-w.Triggers:
			l.ask(t)
		case <-w.Reload:
			l.reload()
		case <-watchdog:
			// A pass that ignores its deadline is hung: let the manager restart us.
			if l.done == nil || time.Now().Before(l.deadline.Add(w.StopTimeout)) {
				w.Observer.Watchdog()
			}
		}
	}
}

// watchLoop is the state of one Run: the engine in force and the pass under way.
type watchLoop struct {
	*Watch
	engine   *Engine
	delay    func(time.Duration) time.Duration
	timer    *time.Timer     // the next timed pass
	done     chan passResult // non-nil while a pass runs
	cancel   context.CancelFunc
	deadline time.Time
	pending  *Trigger // asked for while a pass ran
	// facts are the last good pass's, which a triggered pass keeps what it does not
	// gather again from; nil until a pass ends well and after a reload.
	facts *facts.Facts

	// The NIC samples' ticker, at nicEvery, and the last sample's linklocal counters.
	nicC     <-chan time.Time
	nicStop  func()
	nicEvery time.Duration
	nicLast  map[string]linkLocal
}

// linkLocal is one interface's linklocal_allowance_exceeded in a NIC sample.
type linkLocal struct {
	driver string
	count  int64
}

// tickNIC (re)starts the NIC ticker when settings.nic_interval is new.
func (l *watchLoop) tickNIC() {
	every := l.engine.Policy.Settings.NICInterval
	if l.nicStop != nil && every == l.nicEvery {
		return
	}
	if l.nicStop != nil {
		l.nicStop()
	}
	l.nicEvery = every
	l.nicC, l.nicStop = nil, func() {}
	if every > 0 { // zero, from Settings built without the defaults: no samples
		l.nicC, l.nicStop = l.NICTicker(every)
	}
}

// sampleNIC reads the ENA counters and reports whether linklocal_allowance_exceeded rose
// on an interface since the previous sample (a driver reload or a counter that went back
// restarted it: any count since is a rise). The first sample is the baseline; the pass
// then reports the delta since the previous pass from state.json, which this leaves alone.
// A failed sample is skipped: the next pass reports why the counters cannot be read.
func (l *watchLoop) sampleNIC(ctx context.Context) bool {
	ins, err := l.SampleNIC(ctx)
	if err != nil {
		return false
	}
	cur := make(map[string]linkLocal, len(ins))
	rose := false
	for _, in := range ins {
		v, ok := in.Counters[nic.LinkLocalExceeded]
		if !in.Available || !ok {
			continue
		}
		cur[in.Name] = linkLocal{in.DriverVersion, v}
		was, seen := l.nicLast[in.Name]
		restarted := was.driver != in.DriverVersion || v < was.count
		if seen && (v > was.count || restarted && v > 0) {
			rose = true
		}
	}
	l.nicLast = cur
	return rose
}

// start runs an apply pass for t in the background; its result arrives on l.done.
func (l *watchLoop) start(t Trigger) {
	l.timer.Stop()
	var pctx context.Context
	pctx, l.cancel = context.WithTimeout(context.Background(), l.PassTimeout)
	l.deadline = time.Now().Add(l.PassTimeout)
	l.done = make(chan passResult, 1)
	go func(e *Engine, prev *facts.Facts, done chan<- passResult) {
		rep, f, err := e.Pass(pctx, t.Sections, prev)
		if rep != nil {
			rep.Command = string(types.CommandWatch)
		}
		done <- passResult{rep, f, err, t}
	}(l.engine, l.facts, l.done)
}

// ask starts a pass for t, or keeps it for after the running one (one at most: triggers
// during a pass merge, their sections too).
func (l *watchLoop) ask(t Trigger) {
	switch {
	case l.done == nil:
		l.start(t)
	case l.pending == nil:
		l.pending = &t
	default:
		m := l.pending.Merge(t)
		l.pending = &m
	}
}

// finished reports a pass, then starts the one asked for meanwhile or waits for the timer.
func (l *watchLoop) finished(r passResult) {
	l.cancel()
	l.done = nil
	if r.err == nil {
		l.facts = r.facts
	}
	l.Observer.Pass(r.rep, r.trigger, r.err)
	if l.pending != nil {
		t := *l.pending
		l.pending = nil
		l.start(t)
		return
	}
	l.timer.Reset(l.delay(l.engine.Policy.Settings.Interval))
}

// reload loads the policy again; a policy with errors leaves the old one in force.
func (l *watchLoop) reload() {
	l.Observer.Reloading()
	ne, diags := l.Load()
	if diags.HasErrors() {
		var files map[string]*hcl.File
		if ne != nil && ne.Policy != nil {
			files = ne.Policy.Files
		}
		l.Observer.ReloadRejected(files, diags)
		return
	}
	l.engine, l.facts = ne, nil
	l.tickNIC()
	l.Observer.Reloaded(ne, diags)
	l.ask(Trigger{Source: TriggerReload})
}

// stop cancels the running pass and waits at most StopTimeout for it to end.
func (l *watchLoop) stop() error {
	l.Observer.Stopping()
	if l.done == nil {
		return nil
	}
	l.cancel()
	select {
	case <-l.done:
		return nil
	case <-time.After(l.StopTimeout):
		return fmt.Errorf("the running pass did not end within %s of being cancelled", l.StopTimeout)
	}
}
