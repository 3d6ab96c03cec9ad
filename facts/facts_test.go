package facts

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/imdsmend/imdsmend/facts/route"
	"github.com/imdsmend/imdsmend/internal/types"
)

// funcProbe is a probe made of a function.
type funcProbe struct {
	name   string
	gather func(ctx context.Context, f *Facts) error
}

func (p funcProbe) Name() string { return p.name }
func (p funcProbe) Gather(ctx context.Context, _ Config, f *Facts) error {
	return p.gather(ctx, f)
}

// TestGatherLeavesAStuckProbeBehind: a probe that ignores its context (a read the kernel
// won't cancel) does not hold the run: Gather reports it failed, keeps the other probes'
// sections, and what the probe writes once it returns reaches nobody.
func TestGatherLeavesAStuckProbeBehind(t *testing.T) {
	release, returned := make(chan struct{}), make(chan struct{})
	probes := []Probe{
		funcProbe{"imds", func(_ context.Context, f *Facts) error {
			f.IMDS = &types.IMDS{Class: types.ClassOK}
			return nil
		}},
		funcProbe{"route", func(_ context.Context, f *Facts) error {
			defer close(returned)
			<-release
			f.Route = &route.Route{Type: "unicast"}
			return nil
		}},
		funcProbe{"firewall", func(ctx context.Context, _ *Facts) error {
			<-ctx.Done() // slow, but honours its bound
			return ctx.Err()
		}},
	}
	got := make(chan *Facts, 1)
	go func() { got <- Gather(context.Background(), Config{Timeout: 20 * time.Millisecond}, probes) }()
	var f *Facts
	select {
	case f = <-got:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("Gather waited for a probe that ignores its context")
	}
	close(release)
	<-returned
	if r := f.Probes["route"]; r.OK || !strings.Contains(r.Error, "left behind") || f.Route != nil {
		t.Errorf("stuck probe: result %+v, section %+v; want a failure and no section", r, f.Route)
	}
	if r := f.Probes["imds"]; !r.OK || f.IMDS == nil {
		t.Errorf("imds probe: result %+v, section %+v; want it kept", r, f.IMDS)
	}
	if r := f.Probes["firewall"]; r.OK || !strings.Contains(r.Error, "deadline") {
		t.Errorf("firewall probe: result %+v; want its own deadline error", r)
	}
}
