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
	"golang.org/x/sys/unix"
)

// Reading chain by chain (issue 16). On a kube-proxy node iptables-nft holds tens of
// thousands of rules, nearly all in KUBE-SVC-*/KUBE-SEP-* chains that only packets to a
// service address enter. A dump of every table (iptables-nft-save) costs more than the
// rest of a run together; IMDS's packets meet a small part of it. So the walk starts from
// the base chains on IMDS's path and reads each chain, over netlink, only when a jump to
// it may match IMDS's traffic: a KUBE-SERVICES rule with -d 10.100.0.1/32 is decided
// without reading its target. iptables-nft's register code is decoded into the conditions
// its text gives (decodeXtRule); a chain holding a rule that decoder does not know is read
// as text (`iptables-nft -t TABLE -S CHAIN`). Native nftables tables (kube-proxy's
// nftables mode) are run the same way on IMDS's packet (nftnetlink.go).
//
// This pass only answers "nothing on IMDS's path stops or diverts it". When it meets any
// rule to report, when anything can't be read this way, or when legacy tables exist, the
// whole ruleset is read as before (readSources): judging a rule needs every way into its
// chain (the shared-chain rule of docs/firewall.md), and that full pass decides it
// exactly as it always has. The walk visits the same chains in both passes, so an empty
// answer here is the full pass's answer.

// tableBases are the built-in chains of each iptables table on IMDS's path (INPUT is
// not: nothing IMDS's requests take passes it).
var tableBases = map[string][]string{
	"raw":      {"PREROUTING", "OUTPUT"},
	"mangle":   {"PREROUTING", "FORWARD", "OUTPUT", "POSTROUTING"},
	"nat":      {"PREROUTING", "OUTPUT", "POSTROUTING"},
	"filter":   {"FORWARD", "OUTPUT"},
	"security": {"FORWARD", "OUTPUT"},
}

// readChains walks the nftables chains on IMDS's path, reading them one at a time.
// ok is false when it can't answer alone, or there is nothing to read: the caller then
// reads the whole ruleset (or sees there is none) as before. Each table is walked on its
// own, in parallel.
func readChains(ctx context.Context, users *userDB, packets map[string]packet) (fw *Firewall, ok bool) {
	tables, present, native, nlErr := presentTables()
	if needsFullRead(present, native, nlErr) {
		return nil, false
	}
	// The walk reads chains and set elements one request at a time: a ruleset that
	// changes meanwhile (kube-proxy syncing) could be seen half old, half new, so the
	// answer stands only if the generation is the same after.
	gen, err := nftGeneration()
	if err != nil {
		return nil, false
	}
	bases, err := nftBaseChains()
	if err != nil {
		return nil, false
	}
	fw = &Firewall{Rules: []Rule{}, Sources: []string{}}
	var sources []*chainSource
	for _, fam := range []struct {
		family, bin string
		nfproto     uint8
	}{{"ipv4", paths.IptablesNft, unix.NFPROTO_IPV4}, {"ipv6", paths.Ip6tablesNft, unix.NFPROTO_IPV6}} {
		if !present["nft/"+fam.family] {
			continue
		}
		bin, err := exec.LookPath(fam.bin)
		if err != nil {
			return nil, false
		}
		fw.Sources = append(fw.Sources, "nft/"+fam.family)
		for _, id := range tables {
			if iptablesNftFamily(id) != fam.family {
				continue
			}
			t := &fwTable{backend: "nft", family: fam.family, name: id.name, chains: map[string]*fwChain{}}
			s := newChainSource(ctx, t, id, bases, fam.nfproto, bin, users)
			if s == nil {
				return nil, false
			}
			sources = append(sources, s)
		}
	}
	var natives []*fwTable
	if native {
		if natives, ok = readNativeTables(tables, bases); !ok {
			return nil, false
		}
		for i, t := range natives {
			if i == 0 || natives[i-1].name != t.name {
				fw.Sources = append(fw.Sources, "nftables "+t.name)
			}
		}
	}
	quiet := make([]bool, len(sources)+len(natives))
	var wg sync.WaitGroup
	for i, s := range sources {
		wg.Go(func() { quiet[i] = s.readBases() && walkQuiet([]*fwTable{s.t}, packets) })
	}
	for i, t := range natives {
		wg.Go(func() { quiet[len(sources)+i] = walkQuiet([]*fwTable{t}, packets) })
	}
	wg.Wait()
	if slices.Contains(quiet, false) {
		return nil, false
	}
	if after, err := nftGeneration(); err != nil || after != gen {
		return nil, false
	}
	return fw, true
}

// needsFullRead says the chain walk can't answer alone: netlink could not list the tables,
// or legacy tables exist, or there are no nftables tables to walk.
func needsFullRead(present map[string]bool, native bool, nlErr error) bool {
	return nlErr != nil || present["legacy/ipv4"] || present["legacy/ipv6"] || !native && !present["nft/ipv4"] && !present["nft/ipv6"]
}

// chainSource reads the chains of one iptables-nft table on demand: over netlink, decoded
// by decodeXtRule, or, for a chain holding a rule that decoder leaves undecoded, as the
// text of `iptables-nft -S CHAIN`.
type chainSource struct {
	ctx     context.Context
	t       *fwTable
	table   string
	nfproto uint8
	bin     string
	users   *userDB
	// bases holds the built-in chains iptables-nft made, true for a DROP policy.
	bases map[string]bool
	// rules dumps a chain's rules: nftChainRules, or what a test stands in for the kernel.
	rules func(nfproto uint8, table, chain string, f func(exprs []byte)) error
}

// newChainSource prepares t to read its chains on first use. It is nil when t has a base
// chain iptables did not make (native nft rules in an iptables table).
func newChainSource(ctx context.Context, t *fwTable, id nftTableID, bases []nftChainID, nfproto uint8, bin string, users *userDB) *chainSource {
	s := &chainSource{ctx: ctx, t: t, table: id.name, nfproto: nfproto, bin: bin, users: users, bases: map[string]bool{}, rules: nftChainRules}
	for _, c := range bases {
		switch {
		case c.table != id:
		case c.name != "INPUT" && !slices.Contains(tableBases[t.name], c.name):
			return nil
		default:
			s.bases[c.name] = c.drop
		}
	}
	t.load = s.loadUser
	return s
}

// readBases reads the table's built-in chains on IMDS's path. iptables-nft shows a
// built-in chain that was never created as an empty one with an ACCEPT policy.
func (s *chainSource) readBases() bool {
	for _, name := range tableBases[s.t.name] {
		c := &fwChain{name: name}
		if _, made := s.bases[name]; made {
			var err error
			if c, err = s.read(name); err != nil {
				return false
			}
		}
		c.hook, c.policy = iptablesHooks[name], vAccept
		if s.bases[name] {
			c.policy = vDrop
		}
		s.t.chains[name] = c
		s.t.order = append(s.t.order, c)
	}
	return true
}

// loadUser reads a user chain for the walk. A name that is no chain (a MARK target read
// as a jump, as parseTarget does) reads as an empty chain, which the walk passes through
// as it passes a jump to nothing. A chain that can't be read is noted in t.loadFailed: the
// walk is then incomplete and the caller reads everything instead.
func (s *chainSource) loadUser(name string) *fwChain {
	c, err := s.read(name)
	if err != nil {
		s.t.loadFailed = true
		return nil
	}
	return c
}

// read reads one chain's rules over netlink, or as text when a rule on it can't be
// decoded. Rules whose destination leaves IMDS out are left out either way.
func (s *chainSource) read(name string) (*fwChain, error) {
	c := &fwChain{name: name}
	dec, decoded := newXtDecoder(s.nfproto == unix.NFPROTO_IPV6), true
	err := s.rules(s.nfproto, s.table, name, func(exprs []byte) {
		if !decoded {
			return
		}
		r, excluded, ok := dec.decode(exprs)
		switch {
		case !ok:
			decoded = false
		case !excluded:
			r.chain, r.pos = c, len(c.rules)+1
			c.rules = append(c.rules, r)
		}
	})
	if err == nil && decoded {
		return c, nil
	}
	return readChain(s.ctx, s.bin, s.table, name, s.t.family, s.users)
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
