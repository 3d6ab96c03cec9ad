// Package iptlegacy is the watch's event source for legacy iptables tables, which announce
// no changes: it compares a checksum of their rules (counters left out) every Every.
package iptlegacy

import (
	"context"
	"time"

	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/facts/firewall"
)

// Every is how often the tables are compared: a quarter second keeps a legacy rule's heal
// well under a second, and a namespace without legacy tables costs two small /proc reads.
const Every = 250 * time.Millisecond

// Source polls the legacy iptables tables of this network namespace.
type Source struct {
	// Every overrides the package's Every; 0 for it.
	Every time.Duration
}

// Name implements events.Source.
func (Source) Name() string { return "iptables-legacy" }

// Sections implements events.Source.
func (Source) Sections() []string { return []string{facts.ProbeFirewall} }

// Run implements events.Source; it ends when the tables can't be read.
func (s Source) Run(ctx context.Context, changed func()) error {
	last, err := firewall.LegacyChecksums()
	if err != nil {
		return err
	}
	every := s.Every
	if every == 0 {
		every = Every
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		sums, err := firewall.LegacyChecksums()
		if err != nil {
			return err
		}
		if sums != last {
			last = sums
			changed()
		}
	}
}
