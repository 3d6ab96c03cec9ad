package firewall

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"

	"github.com/imdsmend/imdsmend/internal/paths"
)

// Reading chain by chain (issue 16). On a kube-proxy node iptables-nft holds tens of
// thousands of rules, nearly all in KUBE-SVC-*/KUBE-SEP-* chains that only packets to a
// service address enter. A dump of every table (iptables-nft-save) costs more than the
// rest of a run together; IMDS's packets meet a small part of it. So, where the only
// rules are iptables-nft's, the walk starts from the base chains on IMDS's path and reads
// each chain (`iptables-nft -t TABLE -S CHAIN`) only when a jump to it may match IMDS's
// traffic: a KUBE-SERVICES rule with -d 10.100.0.1/32 is decided without reading its
// target. The chains that exist are listed over netlink first, so a target that is no
// chain (MARK, MASQUERADE) costs no exec.
//
// This pass only answers "nothing on IMDS's path stops or diverts it". When it meets any
// rule to report, when anything can't be read this way, or when other rules exist (legacy
// or native nft tables), the whole ruleset is read as before (readSources): judging a
// rule needs every way into its chain (the shared-chain rule of docs/firewall.md), and
// that full pass decides it exactly as it always has. The walk visits the same chains in
// both passes, so an empty answer here is the full pass's answer.

// readChains walks the iptables-nft chains on IMDS's path, reading them one at a time.
// ok is false when it can't answer alone; the caller then reads the whole ruleset.
func readChains(ctx context.Context, users *userDB, packets map[string]packet) (fw *Firewall, ok bool) {
	present, native, nlErr := presentTables()
	if nlErr != nil || native || present["legacy/ipv4"] || present["legacy/ipv6"] {
		return nil, false
	}
	chains, err := nftChains()
	if err != nil {
		return nil, false
	}
	fw = &Firewall{Rules: []Rule{}, Sources: []string{}}
	for _, fam := range []struct{ family, nft, bin string }{{"ipv4", "ip", paths.IptablesNft}, {"ipv6", "ip6", paths.Ip6tablesNft}} {
		if !present["nft/"+fam.family] {
			continue
		}
		bin, err := exec.LookPath(fam.bin)
		if err != nil {
			return nil, false
		}
		tables, ok := lazyTables(ctx, chains, fam.nft, fam.family, bin, users)
		if !ok || !walkQuiet(tables, packets) {
			return nil, false
		}
		fw.Sources = append(fw.Sources, "nft/"+fam.family)
	}
	return fw, true
}

// lazyTables builds family's iptables-nft tables with their base chains on IMDS's path
// read (in parallel) and the others to be read on first use. ok is false when a base
// chain has a name iptables does not give (native nft rules in an iptables table) or
// can't be read.
func lazyTables(ctx context.Context, chains []nftChainID, nftFamily, family, bin string, users *userDB) ([]*fwTable, bool) {
	byTable := map[string]*fwTable{}
	var tables []*fwTable
	type base struct {
		t    *fwTable
		name string
	}
	var bases []base
	for _, id := range chains {
		if id.table.family != nftFamily || !xtablesTables[id.table.name] {
			continue
		}
		t := byTable[id.table.name]
		if t == nil {
			t = &fwTable{backend: "nft", family: family, name: id.table.name, chains: map[string]*fwChain{}}
			byTable[id.table.name] = t
			tables = append(tables, t)
		}
		hook, known := iptablesHooks[id.name]
		switch {
		case !id.base:
			t.chains[id.name] = nil // exists, read on first use
		case !known:
			return nil, false
		case hookCarries(hook, classRoot) || hookCarries(hook, classForwarded):
			bases = append(bases, base{t, id.name})
		}
	}
	read := make([]*fwChain, len(bases))
	failed := make([]bool, len(bases))
	var wg sync.WaitGroup
	for i, b := range bases {
		wg.Go(func() {
			var err error
			read[i], err = readChain(ctx, bin, b.t.name, b.name, family, users)
			failed[i] = err != nil
		})
	}
	wg.Wait()
	for i, b := range bases {
		if failed[i] {
			return nil, false
		}
		b.t.chains[b.name] = read[i]
		b.t.order = append(b.t.order, read[i])
	}
	for _, t := range tables {
		// Names listed over netlink but not read yet are placeholders: drop them so that
		// chain() reads them; a name not listed is no chain and stays nil.
		exists := map[string]bool{}
		for name, c := range t.chains {
			if c == nil {
				exists[name] = true
				delete(t.chains, name)
			}
		}
		t.load = lazyLoader(ctx, t, exists, bin, family, users)
	}
	return tables, true
}

// lazyLoader reads user chains of t on first use. A chain that can't be read is noted in
// t.loadFailed: the walk is then incomplete and the caller reads everything instead.
func lazyLoader(ctx context.Context, t *fwTable, exists map[string]bool, bin, family string, users *userDB) func(string) *fwChain {
	return func(name string) *fwChain {
		if !exists[name] {
			return nil
		}
		c, err := readChain(ctx, bin, t.name, name, family, users)
		if err != nil {
			t.loadFailed = true
			return nil
		}
		return c
	}
}

// readChain reads one chain with `iptables-nft -t TABLE -S CHAIN`, whose lines are those
// of iptables-save (-P for a base chain's policy, -N for a user chain, then -A rules), so
// rule specs are the same text.
func readChain(ctx context.Context, bin, table, chain, family string, users *userDB) (*fwChain, error) {
	out, err := runTool(ctx, bin, "-t", table, "-S", chain)
	if err != nil {
		return nil, err
	}
	c, err := parseChain(out, chain, family, users)
	if err != nil {
		return nil, fmt.Errorf("%s -t %s -S %s: %w", bin, table, chain, err)
	}
	return c, nil
}

// parseChain reads what `iptables -S CHAIN` printed.
func parseChain(out, chain, family string, users *userDB) (*fwChain, error) {
	c := &fwChain{name: chain}
	chains := map[string]*fwChain{chain: c}
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line == "-N "+chain:
		case strings.HasPrefix(line, "-P "+chain+" "):
			c.hook, c.policy = iptablesHooks[chain], vAccept
			if strings.HasSuffix(line, " DROP") {
				c.policy = vDrop
			}
		case strings.HasPrefix(line, "-A "):
			if err := addRule(line, chains, family, users); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unexpected %q", line)
		}
	}
	return c, nil
}

// walkQuiet walks every base chain of tables and reports whether the walk was complete
// and met nothing to report.
func walkQuiet(tables []*fwTable, packets map[string]packet) bool {
	ev := newEvaluator()
	ev.walkBases(tables, packets)
	for _, t := range tables {
		if t.loadFailed {
			return false
		}
	}
	return !ev.truncated && len(ev.order) == 0
}
