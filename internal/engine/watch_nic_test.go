package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imdsmend/imdsmend/facts/nic"
)

// nicSample is what one NIC sample returns.
type nicSample struct {
	ins []nic.Interface
	err error
}

func ena(name, driver string, linklocal int64) nic.Interface {
	return nic.Interface{Name: name, Driver: "ena", DriverVersion: driver, Available: true,
		Counters: map[string]int64{nic.LinkLocalExceeded: linklocal, "pps_allowance_exceeded": 3}}
}

func samples(ins ...nic.Interface) nicSample { return nicSample{ins: ins} }

// nicBed is a watch loop whose NIC ticker and samples the test drives: each tick it sends
// is followed by the sample the loop reads.
type nicBed struct {
	*bed
	every   chan time.Duration // the intervals the loop asked a ticker for
	ticks   chan time.Time
	samples chan nicSample
}

func newNICBed(t *testing.T) *nicBed {
	b := &nicBed{bed: newBed(t, "1h"), every: make(chan time.Duration, 8), ticks: make(chan time.Time), samples: make(chan nicSample)}
	b.w.NICTicker = func(d time.Duration) (<-chan time.Time, func()) {
		b.every <- d
		return b.ticks, func() {}
	}
	b.w.SampleNIC = func(context.Context) ([]nic.Interface, error) {
		s := <-b.samples
		return s.ins, s.err
	}
	return b
}

func (b *nicBed) sample(s nicSample) {
	b.ticks <- time.Now()
	b.samples <- s
}

// TestWatchNICSamples: between passes (the interval is an hour) the loop samples the ENA
// counters at each tick of its own ticker and asks for a pass when
// linklocal_allowance_exceeded rose on an interface since the previous sample. A trigger
// sent after the samples proves no pass came before it when none is wanted.
func TestWatchNICSamples(t *testing.T) {
	tests := []struct {
		name    string
		samples []nicSample
		pass    bool // the last sample asks for a pass
	}{
		{"the first sample is the baseline", []nicSample{samples(ena("ens5", "2.13.0g", 5))}, false},
		{"unchanged", []nicSample{samples(ena("ens5", "2.13.0g", 5)), samples(ena("ens5", "2.13.0g", 5))}, false},
		{"rose", []nicSample{samples(ena("ens5", "2.13.0g", 5)), samples(ena("ens5", "2.13.0g", 7))}, true},
		{"rose on the second interface", []nicSample{
			samples(ena("ens5", "2.13.0g", 5), ena("ens6", "2.13.0g", 0)),
			samples(ena("ens5", "2.13.0g", 5), ena("ens6", "2.13.0g", 1))}, true},
		{"driver reloaded, counting again", []nicSample{samples(ena("ens5", "2.13.0g", 5)), samples(ena("ens5", "2.14.1g", 2))}, true},
		{"counters reset to zero", []nicSample{samples(ena("ens5", "2.13.0g", 5)), samples(ena("ens5", "2.13.0g", 0))}, false},
		{"a new interface is a baseline", []nicSample{samples(ena("ens5", "2.13.0g", 5)), samples(ena("ens5", "2.13.0g", 5), ena("ens6", "2.13.0g", 9))}, false},
		{"unavailable counters", []nicSample{
			samples(nic.Interface{Name: "eth0", Driver: "veth", Reason: "not ENA"}),
			samples(nic.Interface{Name: "eth0", Driver: "veth", Reason: "not ENA"})}, false},
		{"a failed sample is skipped", []nicSample{samples(ena("ens5", "2.13.0g", 5)), {err: errors.New("ethtool socket")}, samples(ena("ens5", "2.13.0g", 5))}, false},
		{"a rise across a failed sample", []nicSample{samples(ena("ens5", "2.13.0g", 5)), {err: errors.New("ethtool socket")}, samples(ena("ens5", "2.13.0g", 6))}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newNICBed(t)
			triggers := make(chan Trigger)
			b.w.Triggers = triggers
			b.run(t)
			expectPass(t, b.rec.next(t), TriggerStart)
			if d := <-b.every; d != time.Minute {
				t.Errorf("NIC ticker every %v, want the default 1m", d)
			}
			for _, s := range tt.samples {
				b.sample(s)
			}
			triggers <- Trigger{Source: "after"}
			if tt.pass {
				expectPass(t, b.rec.next(t), TriggerNIC)
			}
			expectPass(t, b.rec.next(t), "after")
		})
	}
}

// TestWatchNICInterval: the NIC ticker follows settings.nic_interval, and a reload that
// changes it restarts the ticker at the new interval.
func TestWatchNICInterval(t *testing.T) {
	b := newNICBed(t)
	reload := make(chan os.Signal)
	b.w.Reload = reload
	b.run(t)
	expectPass(t, b.rec.next(t), TriggerStart)
	if d := <-b.every; d != time.Minute {
		t.Errorf("NIC ticker every %v, want the default 1m", d)
	}
	writePolicy(t, b.file, strings.Replace(fmt.Sprintf(watchPolicy, "1h"), "settings {", "settings {\n  nic_interval = \"10s\"", 1))
	reload <- syscall.SIGHUP
	for _, want := range []string{"reloading", "reloaded", "pass"} {
		if ev := b.rec.next(t); ev.kind != want {
			t.Fatalf("got %s, want %s (%v)", ev.kind, want, ev.diags)
		}
	}
	if d := <-b.every; d != 10*time.Second {
		t.Errorf("after the reload the NIC ticker ticks every %v, want 10s", d)
	}
	// The new ticker's samples work as before.
	b.sample(samples(ena("ens5", "2.13.0g", 1)))
	b.sample(samples(ena("ens5", "2.13.0g", 2)))
	expectPass(t, b.rec.next(t), TriggerNIC)
}
