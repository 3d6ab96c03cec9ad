package e2e

import (
	"testing"
)

// TestNICFactsNotENA: in a namespace shaped like an instance, the primary ENI is a veth,
// so facts.nic lists it as unavailable with the reason (not zero counters) and the run
// keeps no counters in state.json.
func TestNICFactsNotENA(t *testing.T) {
	ctx := testContext(t)
	ns := instanceBed(ctx, t)
	r := newRun(t, ns)
	f := factsIn(ctx, t, ns, r, nil)
	if f.NIC == nil || !f.Probes["nic"].OK {
		t.Fatalf("nic section %+v, probe %+v; want it filled", f.NIC, f.Probes["nic"])
	}
	var eth0 bool
	for _, in := range f.NIC.Interfaces {
		if in.Available || in.Reason == "" || len(in.Counters) != 0 {
			t.Errorf("interface %+v; want unavailable with a reason", in)
		}
		eth0 = eth0 || (in.Name == "eth0" && in.Driver == "veth")
	}
	if !eth0 || f.NIC.LinkLocalExceededDelta != 0 {
		t.Errorf("nic %+v; want eth0 (veth) listed, no delta", f.NIC)
	}
}
