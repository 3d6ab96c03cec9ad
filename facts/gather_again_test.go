package facts

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"

	"github.com/imdsmend/imdsmend/facts/firewall"
	"github.com/imdsmend/imdsmend/facts/proxy"
	"github.com/imdsmend/imdsmend/facts/route"
	"github.com/imdsmend/imdsmend/internal/types"
)

// TestGatherAgain: only the named probes run (and those the previous facts lack); every
// other section and its probe result come from the previous facts; a named probe that
// fails leaves its section null, not the previous one.
func TestGatherAgain(t *testing.T) {
	var mu sync.Mutex // the probes run concurrently
	ran := map[string]int{}
	probe := func(name string, fill func(f *Facts) error) Probe {
		return funcProbe{name, func(_ context.Context, f *Facts) error {
			mu.Lock()
			ran[name]++
			mu.Unlock()
			return fill(f)
		}}
	}
	probes := []Probe{
		probe("imds", func(f *Facts) error {
			f.IMDS, f.IMDSv6 = &types.IMDS{Class: types.ClassOK}, &types.IMDS{Class: types.ClassOK}
			return nil
		}),
		probe("firewall", func(*Facts) error { return errors.New("xtables lock held") }),
		probe("route", func(f *Facts) error { f.Route = &route.Route{Type: "prohibit"}; return nil }),
		probe("proxy", func(f *Facts) error { f.Proxy = &proxy.Proxy{}; return nil }),
		probe("nic", func(*Facts) error { return nil }),
	}
	prevRoute, prevProxy := &route.Route{Type: "unicast"}, &proxy.Proxy{Errors: []string{"x"}}
	prev := &Facts{
		IMDS: &types.IMDS{Class: types.ClassTimeout}, IMDSv6: &types.IMDS{Class: types.ClassTimeout},
		Firewall: &firewall.Firewall{}, Route: prevRoute, Proxy: prevProxy,
		Probes: map[string]ProbeResult{"imds": {OK: true}, "firewall": {OK: true}, "route": {OK: true}, "proxy": {OK: false, Error: "was"}},
	}
	f := GatherAgain(context.Background(), Config{}, probes, []string{"imds", "firewall"}, prev)
	if want := map[string]int{"imds": 1, "firewall": 1, "nic": 1}; !maps.Equal(ran, want) {
		t.Errorf("probes run %v, want %v", ran, want)
	}
	if f.IMDS.Class != types.ClassOK || f.IMDSv6.Class != types.ClassOK {
		t.Errorf("imds sections %+v %+v, want the new ones", f.IMDS, f.IMDSv6)
	}
	if f.Firewall != nil || f.Probes["firewall"].OK {
		t.Errorf("failed firewall probe: section %+v, result %+v; want null and failed", f.Firewall, f.Probes["firewall"])
	}
	if f.Route != prevRoute || f.Proxy != prevProxy || f.Probes["proxy"].Error != "was" || !f.Probes["route"].OK {
		t.Errorf("kept sections: route %+v, proxy %+v, results %+v; want the previous ones", f.Route, f.Proxy, f.Probes)
	}
	if _, ok := f.Probes["nic"]; !ok {
		t.Error("the probe the previous facts lack did not report")
	}
}
