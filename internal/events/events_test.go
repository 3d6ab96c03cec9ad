package events

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestMerge(t *testing.T) {
	tests := []struct {
		name string
		t, u Trigger
		want Trigger
	}{
		{"sections join", Trigger{"nftables", []string{"firewall"}}, Trigger{"route", []string{"route", "firewall"}}, Trigger{"nftables", []string{"firewall", "route"}}},
		{"all wins", Trigger{"nftables", []string{"firewall"}}, Trigger{"timer", nil}, Trigger{"nftables", nil}},
		{"all stays all", Trigger{"start", nil}, Trigger{"route", []string{"route"}}, Trigger{"start", nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.t.Merge(tt.u); got.Source != tt.want.Source || !slices.Equal(got.Sections, tt.want.Sections) || (got.Sections == nil) != (tt.want.Sections == nil) {
				t.Errorf("Merge = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// fakeTimers are timers the test fires.
type fakeTimers struct{ started chan fakeTimer }

type fakeTimer struct {
	d time.Duration
	c chan time.Time
}

func (f fakeTimers) new(d time.Duration) (<-chan time.Time, func() bool) {
	c := make(chan time.Time, 1)
	f.started <- fakeTimer{d, c}
	return c, func() bool { return true }
}

// stormSource makes n changes, each taken by the debouncer (it starts a timer) before the
// next, and hands out the last quiet timer.
type stormSource struct {
	n      int
	timers fakeTimers
	last   chan fakeTimer
}

func (stormSource) Name() string       { return "storm" }
func (stormSource) Sections() []string { return []string{"firewall"} }
func (s stormSource) Run(ctx context.Context, changed func()) error {
	var quiet fakeTimer
	for range s.n {
		changed()
		for quiet = <-s.timers.started; quiet.d != time.Millisecond; quiet = <-s.timers.started {
		}
	}
	s.last <- quiet
	<-ctx.Done()
	return nil
}

// TestStormIsOneTrigger: a thousand changes before the quiet time ends are one trigger.
func TestStormIsOneTrigger(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	timers := fakeTimers{started: make(chan fakeTimer, 16)}
	out := make(chan Trigger, 16)
	src := stormSource{n: 1000, timers: timers, last: make(chan fakeTimer)}
	Start(ctx, []Source{src}, Debounce{Quiet: time.Millisecond, Max: time.Hour, NewTimer: timers.new}, out, func(string, error) {})
	(<-src.last).c <- time.Now()
	got := <-out
	if got.Source != "storm" || !slices.Equal(got.Sections, []string{"firewall"}) {
		t.Errorf("trigger %+v, want storm/[firewall]", got)
	}
	cancel()
	if n := len(out); n != 0 {
		t.Errorf("%d more triggers for one storm, want none", n)
	}
}

// failingSource cannot start.
type failingSource struct{}

func (failingSource) Name() string                      { return "broken" }
func (failingSource) Sections() []string                { return nil }
func (failingSource) Run(context.Context, func()) error { return errors.New("no netlink here") }

// TestFailedSourceIsReported: a source that can't start is handed to failed, by name.
func TestFailedSourceIsReported(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	failed := make(chan error, 1)
	Start(ctx, []Source{failingSource{}}, DefaultDebounce, make(chan Trigger), func(name string, err error) {
		if name == "broken" {
			failed <- err
		}
	})
	if err := <-failed; err.Error() != "event source broken: no netlink here" {
		t.Errorf("failed with %q", err)
	}
}
