package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"

	"github.com/imdsmend/imdsmend/facts/route"
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

// tableBases are the built-in chains of each iptables table on IMDS's path (INPUT is
// not: nothing IMDS's requests take passes it).
var tableBases = map[string][]string{
	"raw":      {"PREROUTING", "OUTPUT"},
	"mangle":   {"PREROUTING", "FORWARD", "OUTPUT", "POSTROUTING"},
	"nat":      {"PREROUTING", "OUTPUT", "POSTROUTING"},
	"filter":   {"FORWARD", "OUTPUT"},
	"security": {"FORWARD", "OUTPUT"},
}

// readChains walks the iptables-nft chains on IMDS's path, reading them one at a time.
// ok is false when it can't answer alone, or there is nothing to read: the caller then
// reads the whole ruleset (or sees there is none) as before. Each table is walked on its
// own, in parallel, while the chains are listed.
func readChains(ctx context.Context, users *userDB, packets map[string]packet) (fw *Firewall, ok bool) {
	present, native, nlErr := presentTables()
	if needsFullRead(present, native, nlErr) {
		return nil, false
	}
	tables, err := nftTables()
	if err != nil {
		return nil, false
	}
	fw = &Firewall{Rules: []Rule{}, Sources: []string{}}
	type lazyTable struct {
		t              *fwTable
		nftFamily, bin string
	}
	var lazy []lazyTable
	for _, fam := range []struct{ family, nft, bin string }{{"ipv4", "ip", paths.IptablesNft}, {"ipv6", "ip6", paths.Ip6tablesNft}} {
		if !present["nft/"+fam.family] {
			continue
		}
		bin, err := exec.LookPath(fam.bin)
		if err != nil {
			return nil, false
		}
		fw.Sources = append(fw.Sources, "nft/"+fam.family)
		for _, id := range tables {
			if id.family == fam.nft && xtablesTables[id.name] {
				t := &fwTable{backend: "nft", family: fam.family, name: id.name, chains: map[string]*fwChain{}}
				lazy = append(lazy, lazyTable{t, fam.nft, bin})
			}
		}
	}
	list := &chainList{done: make(chan struct{})}
	go func() {
		list.ids, list.err = nftChains()
		close(list.done)
	}()
	quiet := make([]bool, len(lazy))
	var wg sync.WaitGroup
	for i, l := range lazy {
		wg.Go(func() {
			quiet[i] = readBases(ctx, l.t, l.bin, users) && list.lazy(ctx, l.t, l.nftFamily, l.bin, users) && walkQuiet([]*fwTable{l.t}, packets)
		})
	}
	wg.Wait()
	<-list.done
	if slices.Contains(quiet, false) {
		return nil, false
	}
	return fw, true
}

// needsFullRead says the chain walk can't answer alone: netlink could not list the tables,
// or legacy or native nft tables exist, or there are no iptables-nft tables to walk.
func needsFullRead(present map[string]bool, native bool, nlErr error) bool {
	return nlErr != nil || native || present["legacy/ipv4"] || present["legacy/ipv6"] || !present["nft/ipv4"] && !present["nft/ipv6"]
}

// chainList is the nftables chains, listed once for all tables.
type chainList struct {
	done chan struct{}
	ids  []nftChainID
	err  error
}

// lazy makes t read its user chains on first use, once the chains are listed. It is false
// when t has a base chain iptables did not make (native nft rules in an iptables table)
// or the chains could not be listed.
func (l *chainList) lazy(ctx context.Context, t *fwTable, nftFamily, bin string, users *userDB) bool {
	<-l.done
	if l.err != nil {
		return false
	}
	exists := map[string]bool{}
	for _, id := range l.ids {
		switch {
		case id.table != nftTableID{nftFamily, t.name}:
		case !id.base:
			exists[id.name] = true
		case id.name != "INPUT" && !slices.Contains(tableBases[t.name], id.name):
			return false
		}
	}
	t.load = lazyLoader(ctx, t, exists, bin, t.family, users)
	return true
}

// readBases reads t's built-in chains on IMDS's path, in parallel. iptables-nft prints a
// built-in chain that was never created as an empty one with an ACCEPT policy.
func readBases(ctx context.Context, t *fwTable, bin string, users *userDB) bool {
	names := tableBases[t.name]
	read := make([]*fwChain, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { read[i], _ = readChain(ctx, bin, t.name, name, t.family, users) })
	}
	wg.Wait()
	for i, c := range read {
		if c == nil {
			return false
		}
		t.chains[names[i]] = c
		t.order = append(t.order, c)
	}
	return true
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
			if excludesIMDS(line, family == "ipv6") {
				// KUBE-SERVICES's thousands of -d CLUSTER-IP rules: parsing them took
				// most of the walk's own time, and they can't meet IMDS's traffic.
				continue
			}
			if err := addRule(line, chains, family, users); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unexpected %q", line)
		}
	}
	return c, nil
}

// excludesIMDS reports, from the text alone, that a rule's destination is an address or
// network without the IMDS address, so it matches none of IMDS's traffic (this pass only
// asks whether anything does; it reports no rule, so skipping one changes no answer).
// iptables -S prints -s, -d, -i, -o and -p before any match and any quoted text, so a
// " -d " there is the rule's own.
func excludesIMDS(line string, v6 bool) bool {
	head := line
	if i := strings.IndexAny(head, "\"'"); i >= 0 {
		head = head[:i]
	}
	if i := strings.Index(head, " -m "); i >= 0 {
		head = head[:i]
	}
	i := strings.Index(head, " -d ")
	if i < 0 || strings.HasSuffix(head[:i], " !") {
		return false
	}
	word, _, _ := strings.Cut(head[i+len(" -d "):], " ")
	pfx, err := netip.ParsePrefix(word)
	return err == nil && !pfx.Contains(route.IMDSAddr(v6))
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
