package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/imdsmend/imdsmend/facts/firewall"
)

// firewallBefore is a firewall_delete change's snapshot, taken just before the intent is
// recorded: how many rules read the spec, and what Apply would record to put them back.
type firewallBefore struct {
	Present   int             `json:"present"`
	Positions []int           `json:"positions,omitempty"`
	Previous  []*string       `json:"previous,omitempty"`
	Expr      json.RawMessage `json:"expr,omitempty"`
	Comment   string          `json:"comment,omitempty"`
}

// Snapshot implements Snapshotter.
func (FirewallDelete) Snapshot(ctx context.Context, _ *Env, c *Change) error {
	d, err := firewallRecord(c)
	if err != nil {
		return err
	}
	var b firewallBefore
	if d.Backend == "nftables" {
		chain, err := d.listNftChain(ctx)
		if err != nil {
			return err
		}
		for i, r := range chain {
			if firewall.NftRuleSpec(r.Expr, r.Comment) != d.Spec {
				continue
			}
			if b.Present++; b.Positions == nil || r.Handle == d.Handle {
				b.Positions, b.Expr, b.Comment = []int{i}, r.Expr, r.Comment
				b.Previous = []*string{nil}
				if i > 0 {
					spec := firewall.NftRuleSpec(chain[i-1].Expr, chain[i-1].Comment)
					b.Previous[0] = &spec
				}
			}
		}
	} else {
		_, words, rules, err := d.chainNow()
		if err != nil {
			return err
		}
		found := indexesOf(rules, words)
		b.Present = len(found)
		b.Positions, b.Previous = removals(rules, words, min(len(found), max(d.Copies, 1)))
	}
	c.Before, err = json.Marshal(b)
	return err
}

// firewallRecord decodes c's firewall_delete record.
func firewallRecord(c *Change) (d firewallDeleteData, err error) {
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return d, fmt.Errorf("read change record: %w", err)
	}
	return d, nil
}

// Observe implements Fixer: the change is in effect while fewer rules read the spec than
// before it. For an intent it completes the record with where the rules were.
func (FirewallDelete) Observe(ctx context.Context, _ *Env, c *Change) (bool, error) {
	d, err := firewallRecord(c)
	if err != nil {
		return false, err
	}
	if len(c.Before) == 0 {
		// Recorded before snapshots were taken: a result says the rules went.
		if len(d.Positions) > 0 {
			return true, nil
		}
		return false, errors.New("the record holds no snapshot of the rules before the change")
	}
	var b firewallBefore
	if err := json.Unmarshal(c.Before, &b); err != nil {
		return false, fmt.Errorf("read change record: %w", err)
	}
	present := 0
	if d.Backend == "nftables" {
		chain, err := d.listNftChain(ctx)
		if err != nil {
			return false, err
		}
		for _, r := range chain {
			if firewall.NftRuleSpec(r.Expr, r.Comment) == d.Spec {
				present++
			}
		}
	} else {
		found, err := d.iptablesFound()
		if err != nil {
			return false, err
		}
		present = len(found)
	}
	if present >= b.Present {
		return false, nil
	}
	if len(d.Positions) == 0 {
		gone := min(len(b.Positions), b.Present-present)
		d.Positions, d.Previous = b.Positions[:gone], b.Previous[:min(len(b.Previous), gone)]
		d.Remaining = present
		d.Expr, d.Comment = b.Expr, b.Comment
	}
	c.Data, err = json.Marshal(d)
	return true, err
}

// iptablesFound lists where the rule sits in its chain now (0-based).
func (d *firewallDeleteData) iptablesFound() ([]int, error) {
	_, words, rules, err := d.chainNow()
	if err != nil {
		return nil, err
	}
	return indexesOf(rules, words), nil
}
