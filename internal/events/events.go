// Package events holds what the watch loop's event sources share: the trigger they send,
// the Source seam each implements (one package per source under internal/events), and the
// runner that debounces them. A source only says that something it watches changed; the
// runner turns a burst of changes into one trigger naming the fact sections the source
// feeds, so a pass re-gathers those alone.
package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Trigger asks the watch loop for a pass.
type Trigger struct {
	// Source names what asked for the pass; it is logged as IMDSMEND_TRIGGER.
	Source string
	// Sections are the fact sections (probe names: "firewall", "route", "proxy", ...) the
	// change can have touched; the pass re-gathers those (and IMDS) and keeps the others
	// from the previous pass. Nil means every section.
	Sections []string
}

// Merge is one pass asked for by t and then u: named by t, the first, it gathers every
// section either names (all of them when either does).
func (t Trigger) Merge(u Trigger) Trigger {
	m := Trigger{Source: t.Source}
	if t.Sections == nil || u.Sections == nil {
		return m
	}
	m.Sections = slices.Clone(t.Sections)
	for _, s := range u.Sections {
		if !slices.Contains(m.Sections, s) {
			m.Sections = append(m.Sections, s)
		}
	}
	return m
}

// Source watches one kind of change.
type Source interface {
	// Name is the trigger's source.
	Name() string
	// Sections are the fact sections its changes can touch.
	Sections() []string
	// Run watches until ctx ends, calling changed (from one goroutine) for every change
	// it sees; changed never blocks. It returns an error at once when it cannot watch,
	// and when it stops watching before ctx ends; nil when ctx ended.
	Run(ctx context.Context, changed func()) error
}

// Debounce turns a burst of changes into one trigger: it fires Quiet after the last
// change, or Max after the first when the changes never pause, whichever is first.
type Debounce struct {
	Quiet, Max time.Duration
	// NewTimer starts a timer; nil for time.NewTimer. Tests fire it by hand.
	NewTimer func(d time.Duration) (c <-chan time.Time, stop func() bool)
}

// DefaultDebounce waits for 50 ms of quiet: a configuration tool's batch of rule changes
// (iptables-restore, nft -f, a thousand `nft add rule` in a row) arrives well within that
// of each other, while a single change still heals in a fraction of a second. A ruleset
// that never stops changing (a kube-proxy sync loop) still costs at most a pass every two
// seconds, and a storm of a second is one pass.
var DefaultDebounce = Debounce{Quiet: 50 * time.Millisecond, Max: 2 * time.Second}

func realTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// ErrStopped is what Start reports for a source that returned before ctx ended without
// saying why.
var ErrStopped = errors.New("stopped watching")

// Start runs every source, each debounced, sending their triggers on out until ctx ends.
// A source that cannot start, or stops, is handed to failed: the loop's timed passes go on
// without it. It returns at once; the sources run in goroutines of their own.
func Start(ctx context.Context, sources []Source, d Debounce, out chan<- Trigger, failed func(source string, err error)) {
	if d.NewTimer == nil {
		d.NewTimer = realTimer
	}
	for _, s := range sources {
		raw := make(chan struct{}, 1)
		changed := func() {
			select {
			case raw <- struct{}{}:
			default: // one already waits: this change joins it
			}
		}
		go d.run(ctx, raw, Trigger{Source: s.Name(), Sections: s.Sections()}, out)
		go func() {
			err := s.Run(ctx, changed)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				err = ErrStopped
			}
			failed(s.Name(), fmt.Errorf("event source %s: %w", s.Name(), err))
		}()
	}
}

// run sends t on out once a burst of changes on raw has settled.
func (d Debounce) run(ctx context.Context, raw <-chan struct{}, t Trigger, out chan<- Trigger) {
	var quiet, most <-chan time.Time
	stopQuiet, stopMost := func() bool { return false }, func() bool { return false }
	for {
		select {
		case <-ctx.Done():
			stopQuiet()
			stopMost()
			return
		case <-raw:
			stopQuiet()
			quiet, stopQuiet = d.NewTimer(d.Quiet)
			if most == nil {
				most, stopMost = d.NewTimer(d.Max)
			}
			continue
		case <-quiet:
		case <-most:
		}
		stopQuiet()
		stopMost()
		quiet, most = nil, nil
		select {
		case out <- t:
		case <-ctx.Done():
			return
		}
	}
}
