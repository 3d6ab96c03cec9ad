package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/remediate"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/rules"
	"github.com/zclconf/go-cty/cty"
)

const watchPolicy = `
settings {
  interval = "%s"
}

rule "imds_unreachable" {
  when     = facts.imds.class != "ok"
  severity = "critical"
  summary  = "IMDS: ${facts.imds.class}"
}
`

// fakeIMDS is a probe whose outcome the test sets; with a gate it waits for the gate or
// the end of its context.
type fakeIMDS struct {
	mu      sync.Mutex
	class   types.IMDSClass
	gate    chan struct{}
	started chan struct{}
}

func (p *fakeIMDS) Name() string { return "imds" }

func (p *fakeIMDS) Gather(ctx context.Context, _ facts.Config, f *facts.Facts) error {
	p.mu.Lock()
	class, gate, started := p.class, p.gate, p.started
	p.mu.Unlock()
	if started != nil {
		started <- struct{}{}
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.IMDS = &types.IMDS{Class: class, Reachable: class == "ok"}
	return nil
}

func (p *fakeIMDS) set(class types.IMDSClass) {
	p.mu.Lock()
	p.class = class
	p.mu.Unlock()
}

// event is one observer call.
type event struct {
	kind    string // pass, reloading, reloaded, rejected, watchdog, stopping
	trigger string
	rep     *report.Report
	err     error
	diags   hcl.Diagnostics
	at      time.Time
}

type recorder struct{ events chan event }

func (r *recorder) Pass(rep *report.Report, t Trigger, err error) {
	r.events <- event{kind: "pass", trigger: t.Source, rep: rep, err: err, at: time.Now()}
}
func (r *recorder) Reloading() { r.events <- event{kind: "reloading", at: time.Now()} }
func (r *recorder) Reloaded(_ *Engine, d hcl.Diagnostics) {
	r.events <- event{kind: "reloaded", diags: d, at: time.Now()}
}
func (r *recorder) ReloadRejected(_ map[string]*hcl.File, d hcl.Diagnostics) {
	r.events <- event{kind: "rejected", diags: d, at: time.Now()}
}
func (r *recorder) Watchdog() {
	select { // pings are not awaited by every test; never block the loop on them
	case r.events <- event{kind: "watchdog", at: time.Now()}:
	default:
	}
}
func (r *recorder) Stopping() { r.events <- event{kind: "stopping", at: time.Now()} }

// next waits for the next event that is not a watchdog ping.
func (r *recorder) next(t *testing.T) event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-r.events:
			if ev.kind != "watchdog" {
				return ev
			}
		case <-deadline:
			t.Fatal("no event from the watch loop within 10s")
		}
	}
}

type bed struct {
	w     *Watch
	probe *fakeIMDS
	rec   *recorder
	file  string
	stop  context.CancelFunc
	ended chan struct{} // closed when Run returned, with its error in err
	err   error
}

// newBed builds a watch loop over a policy file in a temporary root, with the fake probe.
func newBed(t *testing.T, interval string) *bed {
	t.Helper()
	root := t.TempDir()
	file := filepath.Join(root, "etc/imdsmend/policy.hcl")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	writePolicy(t, file, fmt.Sprintf(watchPolicy, interval))
	probe := &fakeIMDS{class: "ok"}
	opts := Options{PolicyFile: "/etc/imdsmend/policy.hcl", PolicyExplicit: true, Root: root, StateDir: "/var/lib/imdsmend"}
	load := func() (*Engine, hcl.Diagnostics) {
		e, diags := New(opts)
		if !diags.HasErrors() {
			e.Probes = []facts.Probe{probe}
		}
		return e, diags
	}
	e, diags := load()
	if diags.HasErrors() {
		t.Fatalf("test policy: %v", diags)
	}
	rec := &recorder{events: make(chan event, 64)}
	w := &Watch{
		Engine: e, Load: load, Observer: rec,
		PassTimeout: 5 * time.Second, StopTimeout: 2 * time.Second,
		Delay: func(time.Duration) time.Duration { return 24 * time.Hour },
	}
	return &bed{w: w, probe: probe, rec: rec, file: file}
}

// stallFixer's change hangs until gate closes, whatever its context says: facts.Gather
// leaves a stuck probe behind, so a fixer is where a pass can still hang.
type stallFixer struct{ gate, started chan struct{} }

func (stallFixer) Kind() string                 { return "stall" }
func (stallFixer) Doc() string                  { return "hangs" }
func (stallFixer) Permission() types.Permission { return types.PermFiles }
func (stallFixer) Spec() hcldec.Spec            { return &hcldec.ObjectSpec{} }
func (stallFixer) Plan(context.Context, *remediate.Env, cty.Value) ([]*remediate.Change, error) {
	return []*remediate.Change{{Target: "x", Detail: "hang"}}, nil
}
func (f stallFixer) Apply(context.Context, *remediate.Env, *remediate.Change) error {
	f.started <- struct{}{}
	<-f.gate
	return nil
}
func (stallFixer) Undo(context.Context, *remediate.Env, *remediate.Change) error { return nil }

func (stallFixer) Observe(context.Context, *remediate.Env, *remediate.Change) (bool, error) {
	return true, nil
}

const stallPolicy = `
settings {
  mode     = "enforce"
  interval = "1h"
  allow { files = true }
}

rule "stall" {
  when     = facts.imds.class == "ok"
  severity = "warning"
  summary  = "stalls"
  remediate "stall" {}
}
`

// stall makes the bed's passes hang in a stallFixer until the test ends; the returned
// channel receives when a pass is hanging.
func (b *bed) stall(t *testing.T) <-chan struct{} {
	t.Helper()
	fx := stallFixer{gate: make(chan struct{}), started: make(chan struct{}, 1)}
	reg, err := remediate.NewRegistry(fx)
	if err != nil {
		t.Fatal(err)
	}
	pol, diags := rules.Parse([]rules.Source{{Name: "stall.hcl", Data: []byte(stallPolicy)}}, reg)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	b.w.Engine.Policy, b.w.Engine.Registry = pol, reg
	t.Cleanup(func() { b.release(t, fx.gate) })
	return fx.started
}

// release lets a hung pass go on and waits until it has ended: the pass holds the run
// lock from before it gathers until it returns, so taking the lock means nothing writes
// under the root any more and the test may remove it.
func (b *bed) release(t *testing.T, gate chan struct{}) {
	close(gate)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	unlock, err := Lock(ctx, b.w.Engine.Paths.Lock())
	if err != nil {
		t.Errorf("the abandoned pass did not end: %v", err)
		return
	}
	unlock()
}

func writePolicy(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (b *bed) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.stop, b.ended = cancel, make(chan struct{})
	go func() { b.err = b.w.Run(ctx); close(b.ended) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-b.ended:
		case <-time.After(10 * time.Second):
			t.Error("watch loop did not end")
		}
	})
}

func expectPass(t *testing.T, ev event, trigger string) *report.Report {
	t.Helper()
	if ev.kind != "pass" || ev.trigger != trigger {
		t.Fatalf("got %s (trigger %q, err %v), want a pass triggered by %q", ev.kind, ev.trigger, ev.err, trigger)
	}
	if ev.err != nil {
		t.Fatalf("pass failed: %v", ev.err)
	}
	if ev.rep.Command != string(types.CommandWatch) {
		t.Errorf("report command %q, want %q", ev.rep.Command, types.CommandWatch)
	}
	return ev.rep
}

func TestWatchStartTimerAndTriggers(t *testing.T) {
	b := newBed(t, "7s")
	asked := make(chan time.Duration, 8)
	proceed := make(chan struct{})
	first := true
	b.w.Delay = func(d time.Duration) time.Duration {
		asked <- d
		if first {
			first = false
			<-proceed // the test changes the fake IMDS before the timer pass
			return time.Millisecond
		}
		return 24 * time.Hour
	}
	triggers := make(chan Trigger)
	b.w.Triggers = triggers
	b.run(t)

	rep := expectPass(t, b.rec.next(t), TriggerStart)
	if !rep.Healthy {
		t.Errorf("start pass unhealthy: %+v", rep)
	}
	if d := <-asked; d != 7*time.Second {
		t.Errorf("delay asked for interval %v, want the policy's 7s", d)
	}
	b.probe.set("timeout")
	close(proceed)
	rep = expectPass(t, b.rec.next(t), TriggerTimer)
	if len(rep.Findings) != 1 || rep.Findings[0].Rule != "imds_unreachable" {
		t.Errorf("timer pass findings %+v, want imds_unreachable", rep.Findings)
	}
	<-asked
	triggers <- Trigger{Source: "netlink"}
	expectPass(t, b.rec.next(t), "netlink")
}

func TestWatchCoalescesTriggersDuringAPass(t *testing.T) {
	b := newBed(t, "1h")
	gate := make(chan struct{})
	b.probe.gate, b.probe.started = gate, make(chan struct{}, 8)
	triggers := make(chan Trigger)
	b.w.Triggers = triggers
	b.run(t)
	<-b.probe.started // the start pass is in the probe
	for _, s := range []string{"inotify", "netlink", "nftables"} {
		triggers <- Trigger{Source: s}
	}
	close(gate)
	expectPass(t, b.rec.next(t), TriggerStart)
	expectPass(t, b.rec.next(t), "inotify") // one pass for the burst, named by its first
	triggers <- Trigger{Source: "later"}
	expectPass(t, b.rec.next(t), "later")
}

func TestWatchReload(t *testing.T) {
	b := newBed(t, "1h")
	reload := make(chan os.Signal)
	triggers := make(chan Trigger)
	b.w.Reload, b.w.Triggers = reload, triggers
	intervals := make(chan time.Duration, 8)
	b.w.Delay = func(d time.Duration) time.Duration { intervals <- d; return 24 * time.Hour }
	b.run(t)
	expectPass(t, b.rec.next(t), TriggerStart)

	writePolicy(t, b.file, fmt.Sprintf(watchPolicy, "2m"))
	reload <- syscall.SIGHUP
	if ev := b.rec.next(t); ev.kind != "reloading" {
		t.Fatalf("got %s, want reloading", ev.kind)
	}
	if ev := b.rec.next(t); ev.kind != "reloaded" {
		t.Fatalf("got %s, want reloaded", ev.kind)
	}
	expectPass(t, b.rec.next(t), TriggerReload)

	writePolicy(t, b.file, "rule \"broken\" {\n  when = facts.nope ==\n}\n")
	reload <- syscall.SIGHUP
	b.rec.next(t) // reloading
	ev := b.rec.next(t)
	if ev.kind != "rejected" || !ev.diags.HasErrors() {
		t.Fatalf("got %s (%v), want rejected with errors", ev.kind, ev.diags)
	}
	if !strings.Contains(ev.diags.Error(), "policy.hcl:2") {
		t.Errorf("diagnostics lack file:line: %v", ev.diags)
	}
	// The old (2m) policy goes on.
	b.probe.set("http_5xx")
	triggers <- Trigger{Source: "after-reject"}
	rep := expectPass(t, b.rec.next(t), "after-reject")
	if len(rep.Findings) != 1 {
		t.Errorf("findings after a rejected reload: %+v", rep.Findings)
	}
	// The loop asks for the next wait after each pass, with the policy then in force.
	for i, want := range []time.Duration{time.Hour, 2 * time.Minute, 2 * time.Minute} {
		select {
		case got := <-intervals:
			if got != want {
				t.Errorf("wait %d: interval %v, want %v", i, got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("wait %d never asked for", i)
		}
	}
}

func TestWatchStopsMidPass(t *testing.T) {
	b := newBed(t, "1h")
	b.probe.gate, b.probe.started = make(chan struct{}), make(chan struct{}, 1)
	b.run(t)
	<-b.probe.started
	b.stop()
	if ev := b.rec.next(t); ev.kind != "stopping" {
		t.Fatalf("got %s, want stopping", ev.kind)
	}
	select {
	case <-b.ended:
		if b.err != nil {
			t.Errorf("clean stop returned %v", b.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("loop did not end after stop")
	}
}

func TestWatchStopIsBoundedWhenAPassHangs(t *testing.T) {
	b := newBed(t, "1h")
	hung := b.stall(t)
	b.w.StopTimeout = 50 * time.Millisecond
	b.run(t)
	<-hung
	b.stop()
	b.rec.next(t) // stopping
	select {
	case <-b.ended:
		if b.err == nil || !strings.Contains(b.err.Error(), "did not end") {
			t.Errorf("want an error about the hung pass, got %v", b.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stop waited for a hung pass without bound")
	}
}

func TestWatchdogStopsWhenAPassHangs(t *testing.T) {
	b := newBed(t, "1h")
	hung := b.stall(t)
	b.w.PassTimeout, b.w.StopTimeout, b.w.WatchdogInterval = 30*time.Millisecond, 30*time.Millisecond, 5*time.Millisecond
	b.run(t)
	<-hung
	hungAt := time.Now().Add(60 * time.Millisecond)
	// Pings continue while the pass is within its bounds …
	var pinged bool
	for !pinged {
		select {
		case ev := <-b.rec.events:
			pinged = ev.kind == "watchdog"
		case <-time.After(10 * time.Second):
			t.Fatal("no watchdog ping while the pass was young")
		}
	}
	// … and stop once it overran them. Pings come every 5 ms, so pings that went on would
	// show up to the end of the window; the margin only absorbs a loaded machine.
	window := time.After(time.Until(hungAt) + 600*time.Millisecond)
	var last time.Time
	for {
		select {
		case ev := <-b.rec.events:
			if ev.kind == "watchdog" {
				last = ev.at
			}
		case <-window:
			if last.After(hungAt.Add(300 * time.Millisecond)) {
				t.Fatalf("watchdog pings went on until %v, though the pass overran its bounds at %v", last, hungAt)
			}
			return
		}
	}
}

func TestWatchPassError(t *testing.T) {
	b := newBed(t, "1h")
	// A lock another run holds past the pass timeout makes the apply pass fail.
	unlock, err := Lock(context.Background(), b.w.Engine.Paths.Lock())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	b.w.PassTimeout = 100 * time.Millisecond
	b.run(t)
	ev := b.rec.next(t)
	if ev.kind != "pass" || !errors.Is(ev.err, context.DeadlineExceeded) {
		t.Fatalf("got %s (err %v), want a failed pass", ev.kind, ev.err)
	}
}

func TestJitter(t *testing.T) {
	for range 1000 {
		if d := Jitter(time.Minute); d < 54*time.Second || d > 66*time.Second {
			t.Fatalf("Jitter(1m) = %v, outside ±10%%", d)
		}
	}
	if d := Jitter(0); d != 0 {
		t.Errorf("Jitter(0) = %v", d)
	}
}
