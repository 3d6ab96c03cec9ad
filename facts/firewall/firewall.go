package firewall

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/imdsmend/imdsmend/facts/route"
	"github.com/imdsmend/imdsmend/internal/paths"
)

// Firewall lists the packet filter rules that IMDS traffic from this host meets.
type Firewall struct {
	Rules   []Rule   `cty:"rules" json:"rules" doc:"Every rule that stops or diverts TCP traffic to an IMDS endpoint (port 80), or may, in traversal order."`
	Sources []string `cty:"sources" json:"sources" doc:"What was read: \"nft/ipv4\", \"legacy/ipv6\", \"nftables inet t\", ..."`
}

// Rule is one rule that stops or diverts IMDS traffic, or a base chain's DROP
// policy that does.
type Rule struct {
	ID         string `cty:"id" json:"id" doc:"backend/family/table/chain/ and a hash of the spec; identical rules in one chain share it."`
	Backend    string `cty:"backend" json:"backend" doc:"\"nft\" or \"legacy\" for iptables rules, \"nftables\" for native nft rules."`
	Family     string `cty:"family" json:"family" doc:"\"ipv4\" (169.254.169.254) or \"ipv6\" (fd00:ec2::254)."`
	Table      string `cty:"table" json:"table" doc:"iptables table (filter, nat, mangle, raw, security) or nft family and table (\"inet t\")."`
	Chain      string `cty:"chain" json:"chain" doc:"Chain the rule sits in."`
	Position   int    `cty:"position" json:"position" doc:"1-based position in the chain; 0 for a chain policy."`
	Handle     int    `cty:"handle" json:"handle" doc:"nft rule handle (nftables only), else 0."`
	Spec       string `cty:"spec" json:"spec" doc:"The rule as iptables -S prints it after \"-A CHAIN\" (\"-P CHAIN DROP\" for a policy), or nft's rule text with its comment."`
	Effect     string `cty:"effect" json:"effect" doc:"drop, reject, dnat, redirect or queue (for a jump, that of the rule it leads to)."`
	Scope      string `cty:"scope" json:"scope" doc:"Whose IMDS requests it hits: everyone, root, non_root (other local users only) or forwarded (containers' and pods' routed traffic only)."`
	Blocks     bool   `cty:"blocks" json:"blocks" doc:"It certainly stops root's requests (imdsmend, cloud-init, the SSM agent) to an endpoint in use (IPv6 only with settings.ipv6)."`
	Certain    bool   `cty:"certain" json:"certain" doc:"Its scope is certain; false when it depends on what imdsmend can't see (marks, rate limits, named sets)."`
	Deliberate bool   `cty:"deliberate" json:"deliberate" doc:"Someone scoped it on purpose: it matches the socket owner (--uid-owner, skuid) on its path, or only hits non-root or forwarded traffic."`
	Broad      bool   `cty:"broad" json:"broad" doc:"It hits more than IMDS: a chain policy, or a rule some way into which (from any hook, INPUT and FORWARD included) does not limit the destination to a /8 or narrower network holding IMDS. Removing it would open other traffic; leads_to names it on the jump that is IMDS's own way to it."`
	LeadsTo    string `cty:"leads_to" json:"leads_to" doc:"For a jump (or goto): the broad rule it leads IMDS traffic to, as \"CHAIN: SPEC\"; the jump limits the destination to IMDS, so deleting it spares the others that rule serves. Empty for other rules."`
	Source     Source `cty:"source" json:"source" doc:"Which front end made the rule and the file and line that hold it (docs/firewall.md, \"Where a rule comes from\")."`
}

// Config tells Read where to find user and group names and which families matter.
type Config struct {
	// Paths locates /etc/passwd and /etc/group (--root); the rules are always the kernel's.
	Paths paths.Paths
	// IPv6 counts a rule blocking IPv6 IMDS traffic as blocking (settings.ipv6).
	IPv6 bool
}

// Read reads iptables (nf_tables and legacy backends, IPv4 and IPv6) and native nftables
// rules and decides which stop IMDS traffic. A host without iptables or nft is fine:
// nothing is read. Rules that exist but can't be read (no tool, a held lock) fail it, so
// the policy sees them as unknown rather than absent.
func Read(ctx context.Context, cfg Config) (*Firewall, error) {
	users, packets := newUserDB(cfg.Paths), routePackets()
	if fw, ok := readChains(ctx, users, packets); ok {
		return fw, nil
	}
	src, err := readSources(ctx)
	if err != nil {
		return nil, err
	}
	fw, err := evaluateFirewall(src, cfg, users, packets)
	if err != nil {
		return nil, err
	}
	attributeSources(ctx, fw.Rules, cfg.Paths)
	return fw, nil
}

// sourceText is the raw output of the tools, kept apart from parsing so tests can feed
// captured output.
type sourceText struct {
	saves []saveText // iptables-save outputs
	nft   []byte     // nft -j list ruleset, nil when not read
	// nftSkip lists the nft tables iptables-nft shows, so native reading skips them.
	nftSkip map[nftTableID]bool
}

type saveText struct {
	backend, family, out string
}

// saveCommands names the -save binary per backend and family.
var saveCommands = []struct {
	backend, family string
	bins            []string
}{
	{"nft", "ipv4", []string{paths.IptablesNftSave}},
	{"nft", "ipv6", []string{paths.Ip6tablesNftSave}},
	{"legacy", "ipv4", []string{paths.IptablesLegacySave, paths.IptablesSave}},
	{"legacy", "ipv6", []string{paths.Ip6tablesLegacySave, paths.Ip6tablesSave}},
}

// readSources runs only the readers that have something to read: iptables-nft-save when
// nftables holds a table iptables-nft made, iptables-legacy-save when the kernel lists
// legacy tables, and nft when a native table exists. On a host with no rules that is no
// exec at all. Each reader is one exec per backend and family for all tables, rather than
// one `iptables -S` per chain (go-iptables' List): an iptables exec costs 1-2 ms before it
// reads a rule, and iptables-nft-save of 1,000 rules about as much as `iptables -S` of one
// table (docs/bench.md). Readers run in parallel. This is the full read; on a host with
// only iptables-nft rules, readChains walks IMDS's path chain by chain first.
func readSources(ctx context.Context) (*sourceText, error) {
	_, present, native, nlErr := presentTables()
	saves, nftInstead, err := readSaves(ctx, present)
	if err != nil {
		return nil, err
	}
	src := &sourceText{saves: saves}
	var incompatible bool
	src.nftSkip, incompatible = iptablesNftTables(src.saves)
	if !native && !nftInstead && !incompatible {
		return src, nil
	}
	nft, err := exec.LookPath(paths.Nft)
	if err != nil {
		if nlErr != nil {
			return src, nil
		}
		return nil, fmt.Errorf("nftables holds native tables but %s is not installed to read them", paths.Nft)
	}
	out, err := runTool(ctx, nft, "-j", "list", "ruleset")
	if err != nil {
		return nil, err
	}
	src.nft = []byte(out)
	return src, nil
}

// presentTables lists the nftables tables and says which iptables backends and families
// hold tables (present, keyed "backend/family") and whether nftables holds native tables.
// When netlink can't list the nftables tables (nlErr), everything there is a tool for
// counts as present.
func presentTables() (tables []nftTableID, present map[string]bool, native bool, nlErr error) {
	tables, nlErr = nftTables()
	present = map[string]bool{
		"legacy/ipv4": procListsTables("/proc/net/ip_tables_names"),
		"legacy/ipv6": procListsTables("/proc/net/ip6_tables_names"),
	}
	for _, id := range tables {
		switch fam := iptablesNftFamily(id); {
		case fam != "":
			present["nft/"+fam] = true
		case packetFamilies(id.family) != nil:
			native = true
		}
	}
	if nlErr != nil {
		present["nft/ipv4"], present["nft/ipv6"], native = true, true, true
	}
	return tables, present, native, nlErr
}

// iptablesNftFamily is "ipv4" or "ipv6" for a table iptables-nft made (ip filter, ip6
// nat, ...), "" for any other.
func iptablesNftFamily(id nftTableID) string {
	switch {
	case !xtablesTables[id.name]:
		return ""
	case id.family == "ip":
		return "ipv4"
	case id.family == "ip6":
		return "ipv6"
	}
	return ""
}

// readSaves runs the -save reader of every present backend and family, in parallel, the
// legacy ones under one hold of the xtables lock. nftInstead says iptables-nft's tables
// are there but iptables-nft-save is not: nft reads them.
func readSaves(ctx context.Context, present map[string]bool) (saves []saveText, nftInstead bool, err error) {
	out := make([]*saveText, len(saveCommands))
	errs := make([]error, len(saveCommands))
	bins := make([]string, len(saveCommands))
	var legacy []int
	var wg sync.WaitGroup
	for i, sc := range saveCommands {
		if !present[sc.backend+"/"+sc.family] {
			continue
		}
		bins[i] = lookFirst(sc.bins)
		switch {
		case bins[i] == "" && sc.backend == "nft":
			nftInstead = true
		case bins[i] == "":
			errs[i] = fmt.Errorf("the kernel holds legacy %s iptables tables but %s is not installed to read them", sc.family, strings.Join(sc.bins, " or "))
		case sc.backend == "legacy":
			legacy = append(legacy, i)
		default:
			wg.Go(func() { out[i], errs[i] = runSave(ctx, sc.backend, sc.family, bins[i]) })
		}
	}
	if len(legacy) > 0 {
		wg.Go(func() {
			unlock, err := lockXtables(ctx, XtablesLockWait)
			if err != nil {
				errs[legacy[0]] = err
				return
			}
			defer unlock()
			for _, i := range legacy {
				out[i], errs[i] = runSave(ctx, saveCommands[i].backend, saveCommands[i].family, bins[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, false, err
	}
	for _, s := range out {
		if s != nil {
			saves = append(saves, *s)
		}
	}
	return saves, nftInstead, nil
}

func runSave(ctx context.Context, backend, family, bin string) (*saveText, error) {
	out, err := runTool(ctx, bin)
	if err != nil {
		return nil, err
	}
	return &saveText{backend, family, out}, nil
}

// iptablesNftTables lists the nft tables iptables-nft printed, which native reading skips,
// and reports whether it called any incompatible: those hold native rules and are read
// with nft.
func iptablesNftTables(saves []saveText) (skip map[nftTableID]bool, incompatible bool) {
	skip = map[nftTableID]bool{}
	for _, s := range saves {
		if s.backend != "nft" {
			continue
		}
		fam := map[string]string{"ipv4": "ip", "ipv6": "ip6"}[s.family]
		for name := range xtablesTables {
			skip[nftTableID{fam, name}] = true
		}
		for _, line := range strings.Split(s.out, "\n") {
			if name, ok := incompatibleTable(line); ok {
				delete(skip, nftTableID{fam, name})
				incompatible = true
			}
		}
	}
	return skip, incompatible
}

// procListsTables reports whether a /proc/net/*_tables_names file names a table. This is
// the kernel state of the namespace imdsmend runs in, not a file of the --root tree.
func procListsTables(path string) bool {
	data, err := os.ReadFile(path)
	return err == nil && len(bytes.TrimSpace(data)) > 0
}

func lookFirst(bins []string) string {
	for _, b := range bins {
		if p, err := exec.LookPath(b); err == nil {
			return p
		}
	}
	return ""
}

// runTool runs a reader and returns its output; C locale keeps the output parseable.
func runTool(ctx context.Context, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		return "", fmt.Errorf("run %s: %w: %s", strings.Join(append([]string{bin}, args...), " "), err, msg)
	}
	return out.String(), nil
}

// routePackets builds the IMDS traffic of each family from the routes the kernel would
// use; an unknown route leaves interface and source unknown.
func routePackets() map[string]packet {
	out := map[string]packet{}
	for fam, dst := range map[string]bool{"ipv4": false, "ipv6": true} {
		p := packet{v6: dst, dst: route.IMDSAddr(dst), port: 80}
		if rl, err := route.Lookup(p.dst); err == nil {
			p.oif, p.src = rl.OIF, rl.Src
			p.dstKnown = rl.Type == "unicast" || rl.Type == "local"
			p.dstLocal = rl.Type == "local"
		}
		out[fam] = p
	}
	return out
}

// evaluateFirewall parses what was read and walks every base chain for each kind of
// traffic. Output it can't parse fails the whole section: a rule it could not see must
// not read as a rule that isn't there. A single rule with options it doesn't model is
// kept, as uncertain.
func evaluateFirewall(src *sourceText, cfg Config, users *userDB, packets map[string]packet) (*Firewall, error) {
	fw := &Firewall{Rules: []Rule{}, Sources: []string{}}
	var tables []*fwTable
	for _, s := range src.saves {
		st, err := parseSave(s.out, s.backend, s.family, users)
		if err != nil {
			return nil, fmt.Errorf("parse %s %s iptables-save output: %w", s.backend, s.family, err)
		}
		if s.backend == "legacy" && st.nfTables {
			return nil, fmt.Errorf("legacy %s iptables tables exist, but %s reads the nf_tables backend; install the iptables-legacy tools", s.family, paths.IptablesSave)
		}
		fw.Sources = append(fw.Sources, s.backend+"/"+s.family)
		tables = append(tables, st.tables...)
	}
	if src.nft != nil {
		nt, err := parseNftRuleset(src.nft, src.nftSkip, users)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, t := range nt {
			if !seen[t.name] {
				fw.Sources = append(fw.Sources, "nftables "+t.name)
				seen[t.name] = true
			}
		}
		tables = append(tables, nt...)
	}
	ev := newEvaluator()
	ev.walkBases(tables, packets)
	if ev.truncated {
		return nil, fmt.Errorf("the firewall rules jump deeper than %d chains or through more than %d rules; imdsmend can't tell which reach IMDS", maxDepth, maxSteps)
	}
	tableOf := map[*fwChain]*fwTable{}
	for _, t := range tables {
		for _, c := range t.order {
			tableOf[c] = t
		}
	}
	for _, h := range ev.order {
		if r, ok := judge(h, tableOf[h.rule.chain], cfg.IPv6); ok {
			fw.Rules = append(fw.Rules, r)
		}
	}
	return fw, nil
}

// judge turns a rule's hits into a fact: scope from the classes it certainly hits (or,
// failing those, may hit), blocks when it certainly hits root.
func judge(h *ruleHits, t *fwTable, ipv6 bool) (Rule, bool) {
	root, user, fwd := h.by[classRoot], h.by[classUser], h.by[classForwarded]
	certain := root >= some || user >= some || fwd >= some
	threshold := some
	if !certain {
		threshold = unknown
	}
	hit := func(o outcome) bool { return o >= threshold }
	var scope string
	switch {
	case hit(root) && hit(user):
		scope = "everyone"
	case hit(root):
		scope = "root"
	case hit(user):
		scope = "non_root"
	case hit(fwd):
		scope = "forwarded"
	default:
		return Rule{}, false
	}
	r := h.rule
	effect := effects[r.verdict]
	leadsTo := ""
	if h.leads != nil {
		effect = effects[h.leads.verdict]
		leadsTo = h.leads.chain.name + ": " + h.leads.spec
	}
	fr := Rule{
		Backend: t.backend, Family: t.family, Table: t.name, Chain: r.chain.name,
		Position: r.pos, Handle: r.handle, Spec: r.spec, Effect: effect, Scope: scope,
		Certain:    certain,
		Blocks:     root >= some && (t.family == "ipv4" || ipv6),
		Deliberate: h.owner || scope == "non_root" || scope == "forwarded",
		Broad:      h.broad,
		LeadsTo:    leadsTo,
	}
	sum := sha256.Sum256([]byte(r.spec))
	fr.ID = strings.Join([]string{fr.Backend, fr.Family, fr.Table, fr.Chain, hex.EncodeToString(sum[:4])}, "/")
	return fr, true
}

// IptablesCommand names the iptables binary that changes backend's rules of family:
// iptables-nft or iptables-legacy (ip6tables-…), or plain iptables on old legacy-only
// distributions that ship no suffixed names.
func IptablesCommand(backend, family string) (string, error) {
	var bins []string
	switch backend + "/" + family {
	case "nft/ipv4":
		bins = []string{paths.IptablesNft}
	case "nft/ipv6":
		bins = []string{paths.Ip6tablesNft}
	case "legacy/ipv4":
		bins = []string{paths.IptablesLegacy, paths.Iptables}
	case "legacy/ipv6":
		bins = []string{paths.Ip6tablesLegacy, paths.Ip6tables}
	default:
		return "", fmt.Errorf("no iptables command for backend %q family %q", backend, family)
	}
	if bin := lookFirst(bins); bin != "" {
		return bin, nil
	}
	return "", fmt.Errorf("%s is not installed", bins[0])
}
