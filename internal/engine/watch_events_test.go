package engine

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/remediate"
	"github.com/imdsmend/imdsmend/rules"
	"github.com/zclconf/go-cty/cty"
)

// countingProbes count how often each probe ran since the last take.
type countingProbes struct {
	mu  sync.Mutex
	ran map[string]int
}

func (c *countingProbes) probe(name string) facts.Probe { return countingProbe{name, c} }

func (c *countingProbes) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	ran := c.ran
	c.ran = map[string]int{}
	return ran
}

type countingProbe struct {
	name string
	c    *countingProbes
}

func (p countingProbe) Name() string { return p.name }

func (p countingProbe) Gather(context.Context, facts.Config, *facts.Facts) error {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	p.c.ran[p.name]++
	return nil
}

// probed drains the fake IMDS probe's starts: how often it ran.
func probed(started chan struct{}) int {
	for n := 0; ; n++ {
		select {
		case <-started:
		default:
			return n
		}
	}
}

// TestWatchTriggerGathersItsSections: the start pass gathers every fact; a triggered pass
// only the sections its trigger names, and IMDS only when the previous pass did not reach
// it; triggers that arrive during a pass merge into one pass that gathers what either
// names.
func TestWatchTriggerGathersItsSections(t *testing.T) {
	b := newBed(t, "1h")
	counts := &countingProbes{ran: map[string]int{}}
	counting := []facts.Probe{counts.probe("firewall"), counts.probe("route"), counts.probe("proxy")}
	b.w.Engine.Probes = append(b.w.Engine.Probes, counting...)
	started := make(chan struct{}, 8)
	b.probe.started = started
	triggers := make(chan Trigger)
	b.w.Triggers = triggers
	b.run(t)

	expectPass(t, b.rec.next(t), TriggerStart)
	if ran, want := counts.take(), map[string]int{"firewall": 1, "route": 1, "proxy": 1}; !maps.Equal(ran, want) || probed(started) != 1 {
		t.Errorf("start pass ran %v, want %v and IMDS", ran, want)
	}

	triggers <- Trigger{Source: "nftables", Sections: []string{"firewall"}}
	expectPass(t, b.rec.next(t), "nftables")
	if ran, want := counts.take(), map[string]int{"firewall": 1}; !maps.Equal(ran, want) {
		t.Errorf("nftables pass ran %v, want %v", ran, want)
	}
	if n := probed(started); n != 0 {
		t.Errorf("IMDS probed %d times after a healthy pass, want 0", n)
	}

	// IMDS breaks; a timed pass (no sections: all) sees it.
	b.probe.set("timeout")
	triggers <- Trigger{Source: TriggerTimer}
	expectPass(t, b.rec.next(t), TriggerTimer)
	if ran, want := counts.take(), map[string]int{"firewall": 1, "route": 1, "proxy": 1}; !maps.Equal(ran, want) || probed(started) != 1 {
		t.Errorf("a trigger naming no sections ran %v, want %v and IMDS", ran, want)
	}

	// Now a triggered pass probes IMDS too; it waits there while two more triggers come.
	gate := make(chan struct{})
	b.probe.mu.Lock()
	b.probe.gate = gate
	b.probe.mu.Unlock()
	triggers <- Trigger{Source: "route", Sections: []string{"route"}}
	<-started
	triggers <- Trigger{Source: "proxy-files", Sections: []string{"proxy"}}
	triggers <- Trigger{Source: "nftables", Sections: []string{"firewall"}}
	close(gate)
	expectPass(t, b.rec.next(t), "route")
	expectPass(t, b.rec.next(t), "proxy-files")
	if ran, want := counts.take(), map[string]int{"route": 1, "proxy": 1, "firewall": 1}; !maps.Equal(ran, want) || probed(started) != 1 {
		t.Errorf("route pass and the merged one ran %v, want %v and IMDS in each", ran, want)
	}
}

// mendFixer mends at once, every time it is asked.
type mendFixer struct{}

func (mendFixer) Kind() string                 { return "mend" }
func (mendFixer) Doc() string                  { return "mends" }
func (mendFixer) Permission() types.Permission { return types.PermFiles }
func (mendFixer) Spec() hcldec.Spec            { return &hcldec.ObjectSpec{} }
func (mendFixer) Plan(context.Context, *remediate.Env, cty.Value) ([]*remediate.Change, error) {
	return []*remediate.Change{{Target: "x", Detail: "mend"}}, nil
}
func (mendFixer) Apply(context.Context, *remediate.Env, *remediate.Change) error { return nil }
func (mendFixer) Undo(context.Context, *remediate.Env, *remediate.Change) error  { return nil }
func (mendFixer) Observe(context.Context, *remediate.Env, *remediate.Change) (bool, error) {
	return false, nil
}

// TestWatchProbesIMDSAfterAMend: a triggered pass after a healthy one does not probe IMDS
// to find the blocker, but does after mending it, to verify.
func TestWatchProbesIMDSAfterAMend(t *testing.T) {
	b := newBed(t, "1h")
	reg, err := remediate.NewRegistry(mendFixer{})
	if err != nil {
		t.Fatal(err)
	}
	pol, diags := rules.Parse([]rules.Source{{Name: "mend.hcl", Data: []byte(strings.ReplaceAll(stallPolicy, "stall", "mend"))}}, reg)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	b.w.Engine.Policy, b.w.Engine.Registry = pol, reg
	counts := &countingProbes{ran: map[string]int{}}
	b.w.Engine.Probes = append(b.w.Engine.Probes, counts.probe("firewall"))
	started := make(chan struct{}, 8)
	b.probe.started = started
	triggers := make(chan Trigger)
	b.w.Triggers = triggers
	b.run(t)
	expectPass(t, b.rec.next(t), TriggerStart)
	probed(started)
	counts.take()

	triggers <- Trigger{Source: "nftables", Sections: []string{"firewall"}}
	rep := expectPass(t, b.rec.next(t), "nftables")
	if len(rep.Actions) != 1 || rep.Actions[0].Status != types.StatusApplied {
		t.Fatalf("actions %+v, want one applied", rep.Actions)
	}
	if ran, want := counts.take(), map[string]int{"firewall": 2}; !maps.Equal(ran, want) {
		t.Errorf("ran %v, want %v (to find, then to verify)", ran, want)
	}
	if n := probed(started); n != 1 {
		t.Errorf("IMDS probed %d times, want once, after the mend", n)
	}
}
