package firewall

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/imdsmend/imdsmend/facts/route"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Native nftables rules are read from `nft -j list ruleset`. JSON is the machine interface
// nft documents as stable (libnftables-json(5)); its text output is for humans and changes
// between releases, and decoding the kernel's netlink expressions ourselves would repeat
// nft's own (large) decoder. The cost is one exec, paid only when a native table exists:
// nftTables lists the tables over netlink first, which takes well under a millisecond.

// nftTableID names an nft table: family (ip, ip6, inet, ...) and name.
type nftTableID struct{ family, name string }

func (id nftTableID) String() string { return id.family + " " + id.name }

// xtablesTables are the names iptables-nft gives its tables.
var xtablesTables = map[string]bool{"filter": true, "nat": true, "mangle": true, "raw": true, "security": true}

// nftFamilies maps the netlink family numbers to nft's names.
var nftFamilies = map[uint8]string{
	unix.NFPROTO_INET: "inet", unix.NFPROTO_IPV4: "ip", unix.NFPROTO_IPV6: "ip6",
	unix.NFPROTO_ARP: "arp", unix.NFPROTO_BRIDGE: "bridge", unix.NFPROTO_NETDEV: "netdev",
}

// nftTables lists the nftables tables of this network namespace over netlink.
func nftTables() ([]nftTableID, error) {
	var ids []nftTableID
	err := nftDump(unix.NFT_MSG_GETTABLE, func(family string, attrs []byte) {
		if name := attr(attrs, unix.NFTA_TABLE_NAME); name != nil {
			ids = append(ids, nftTableID{family: family, name: nlString(name)})
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list nftables tables: %w", err)
	}
	return ids, nil
}

// The netfilter verdict codes of linux/netfilter.h that x/sys/unix leaves out.
const (
	nfDrop   = 0
	nfAccept = 1
)

// nftChainID names an nft base chain, its hook (for the ip, ip6 and inet families), and
// whether its policy is drop.
type nftChainID struct {
	table      nftTableID
	name, hook string
	drop       bool
}

// nftBaseChains lists the nftables base chains (those on a hook) of this network
// namespace over netlink. A kube-proxy node has thousands of user chains; they are
// skipped without copying their names.
func nftBaseChains() ([]nftChainID, error) {
	var ids []nftChainID
	err := nftDump(unix.NFT_MSG_GETCHAIN, func(family string, attrs []byte) {
		if attr(attrs, unix.NFTA_CHAIN_HOOK) == nil {
			return
		}
		policy, ok := beUint32(attr(attrs, unix.NFTA_CHAIN_POLICY))
		hook, _ := beUint32(attr(attr(attrs, unix.NFTA_CHAIN_HOOK), unix.NFTA_HOOK_HOOKNUM))
		ids = append(ids, nftChainID{
			table: nftTableID{family: family, name: nlString(attr(attrs, unix.NFTA_CHAIN_TABLE))},
			name:  nlString(attr(attrs, unix.NFTA_CHAIN_NAME)),
			hook:  nftHooks[hook],
			drop:  ok && policy == nfDrop,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list nftables chains: %w", err)
	}
	return ids, nil
}

// nftDump dumps one kind of nftables object of every family and hands each object's
// family and top-level attributes to f.
func nftDump(msgType int, f func(family string, attrs []byte)) error {
	req := nl.NewNetlinkRequest(unix.NFNL_SUBSYS_NFTABLES<<8|msgType, unix.NLM_F_DUMP)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: unix.AF_UNSPEC, Version: unix.NFNETLINK_V0})
	return netfilterDump(req, func(m []byte) {
		if len(m) >= nl.SizeofNfgenmsg {
			f(nftFamilies[m[0]], m[nl.SizeofNfgenmsg:])
		}
	})
}

func nlString(b []byte) string { return string(bytes.TrimRight(b, "\x00")) }

// nftObject is one element of the "nftables" array: exactly one of these is set.
type nftObject struct {
	Table *struct {
		Family string `json:"family"`
		Name   string `json:"name"`
	} `json:"table"`
	Chain *struct {
		Family string `json:"family"`
		Table  string `json:"table"`
		Name   string `json:"name"`
		Hook   string `json:"hook"`
		Policy string `json:"policy"`
	} `json:"chain"`
	Rule *nftRuleJSON `json:"rule"`
	Set  *nftSetJSON  `json:"set"`
	Map  *nftSetJSON  `json:"map"`
}

type nftRuleJSON struct {
	Family  string `json:"family"`
	Table   string `json:"table"`
	Chain   string `json:"chain"`
	Handle  int    `json:"handle"`
	Expr    []any  `json:"expr"`
	Comment string `json:"comment"`
}

// parseNftRuleset reads `nft -j list ruleset` into tables, one per packet family: an inet
// table yields an ipv4 and an ipv6 table. Tables in skip (those iptables-nft shows) and
// families that carry no IP traffic to IMDS (arp, bridge, netdev) are left out.
func parseNftRuleset(data []byte, skip map[nftTableID]bool, users *userDB) ([]*fwTable, error) {
	var doc struct {
		Nftables []nftObject `json:"nftables"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse nft JSON: %w", err)
	}
	// Sets and maps first: nft lists them before the rules that use them, but nothing
	// promises that.
	sets := map[nftTableID]map[string]*nftSet{}
	for _, o := range doc.Nftables {
		s, isMap := o.Set, false
		if o.Map != nil {
			s, isMap = o.Map, true
		}
		if s == nil {
			continue
		}
		id := nftTableID{s.Family, s.Table}
		if sets[id] == nil {
			sets[id] = map[string]*nftSet{}
		}
		sets[id][s.Name] = parseNftSet(s.Elem, isMap)
	}
	byID := map[nftTableID][]*fwTable{}
	var out []*fwTable
	for _, o := range doc.Nftables {
		switch {
		case o.Table != nil:
			id := nftTableID{o.Table.Family, o.Table.Name}
			if skip[id] || byID[id] != nil {
				continue
			}
			for _, fam := range packetFamilies(id.family) {
				t := &fwTable{backend: "nftables", family: fam, name: id.String(), chains: map[string]*fwChain{}}
				byID[id] = append(byID[id], t)
				out = append(out, t)
			}
		case o.Chain != nil:
			for _, t := range byID[nftTableID{o.Chain.Family, o.Chain.Table}] {
				c := &fwChain{name: o.Chain.Name}
				if o.Chain.Hook != "" {
					c.hook = o.Chain.Hook
					c.policy = vAccept
					if o.Chain.Policy == "drop" {
						c.policy = vDrop
					}
				}
				t.chains[c.name] = c
				t.order = append(t.order, c)
			}
		case o.Rule != nil:
			id := nftTableID{o.Rule.Family, o.Rule.Table}
			tables := byID[id]
			if len(tables) == 0 {
				continue
			}
			// Conditions look at the packet's family, so one parse serves both of an
			// inet table; only "narrows" and "mapNarrow" differ.
			parsed := parseNftRule(o.Rule.Expr, o.Rule.Comment, users, sets[id])
			for _, t := range tables {
				c := t.chains[o.Rule.Chain]
				if c == nil {
					return nil, fmt.Errorf("nft rule handle %d in unknown chain %s %s", o.Rule.Handle, t.name, o.Rule.Chain)
				}
				r := *parsed.rule
				r.narrows = parsed.narrows[t.family == "ipv6"]
				r.mapNarrow = parsed.mapNarrow[map[bool]int{false: 0, true: 1}[t.family == "ipv6"]]
				r.chain, r.pos, r.handle = c, len(c.rules)+1, o.Rule.Handle
				c.rules = append(c.rules, &r)
			}
		}
	}
	return out, nil
}

func packetFamilies(nftFamily string) []string {
	switch nftFamily {
	case "ip":
		return []string{"ipv4"}
	case "ip6":
		return []string{"ipv6"}
	case "inet":
		return []string{"ipv4", "ipv6"}
	}
	return nil
}

// NftRuleSpec is the text facts.firewall.rules[*].spec holds for an nft rule given its
// "expr" JSON and comment; the fixer compares it to make sure a handle still holds the
// rule the policy meant.
func NftRuleSpec(expr json.RawMessage, comment string) string {
	var exprs []any
	if err := json.Unmarshal(expr, &exprs); err != nil {
		return string(expr)
	}
	return parseNftRule(exprs, comment, nil, nil).rule.spec
}

// nftParsed is a rule parsed once for both IP families.
type nftParsed struct {
	rule *fwRule
	// narrows per family: false for IPv4, true for IPv6.
	narrows map[bool]bool
	// mapNarrow per family (IPv6 at 1): for each chain a verdict map names, whether
	// every element naming it limits the destination to IMDS's network.
	mapNarrow [2]map[string]bool
	// sets are the named sets and maps of the rule's table, by name.
	sets map[string]*nftSet
}

// parseNftRule turns a rule's expressions into conditions, a verdict and its text; the
// rule's comment ends the text as nft prints it, so policies can match it.
func parseNftRule(exprs []any, comment string, users *userDB, sets map[string]*nftSet) nftParsed {
	np := nftParsed{rule: &fwRule{}, narrows: map[bool]bool{}, mapNarrow: [2]map[string]bool{{}, {}}, sets: sets}
	text := make([]string, 0, len(exprs))
	for _, e := range exprs {
		stmt, ok := e.(map[string]any)
		if !ok || len(stmt) != 1 {
			np.rule.conds = append(np.rule.conds, func(*packet) outcome { return unknown })
			text = append(text, jsonText(e))
			continue
		}
		for key, val := range stmt {
			text = append(text, np.statement(key, val, users))
		}
	}
	if comment != "" {
		text = append(text, "comment "+strconv.Quote(comment))
	}
	np.rule.spec = strings.Join(text, " ")
	return np
}

// field reads obj[key] as T, the zero value when absent or of another type.
func field[T any](obj any, key string) T {
	m, _ := obj.(map[string]any)
	v, _ := m[key].(T)
	return v
}

// statement applies one statement to the rule and returns its text.
func (np nftParsed) statement(key string, val any, users *userDB) string {
	r := np.rule
	unknownCond := func(*packet) outcome { return unknown }
	switch key {
	case "match":
		op := field[string](val, "op")
		left := field[any](val, "left")
		r.conds = append(r.conds, np.match(op, left, field[any](val, "right"), users))
		opText := ""
		if op != "==" && op != "in" && op != "" {
			opText = op + " "
		}
		return leftText(left) + " " + opText + valueText(field[any](val, "right"))
	case "accept", "drop", "return", "continue":
		r.verdict = map[string]int{"accept": vAccept, "drop": vDrop, "return": vReturn, "continue": vContinue}[key]
		return key
	case "jump", "goto":
		target := field[string](val, "target")
		r.verdict, r.target = vJump, target
		if key == "goto" {
			r.verdict = vGoto
		}
		return key + " " + target
	case "reject":
		r.verdict = vReject
		if typ := field[string](val, "type"); typ != "" {
			return strings.TrimSpace("reject with " + typ + " " + field[string](val, "expr"))
		}
		return "reject"
	case "queue":
		r.verdict, r.uncertainVerdict = vQueue, true
		return "queue"
	case "redirect":
		r.verdict = vRedirect
		return "redirect" + portSuffix(field[any](val, "port"))
	case "dnat":
		r.verdict = vDNAT
		addr := field[string](val, "addr")
		port := portSuffix(field[any](val, "port"))
		if a, err := netip.ParseAddr(addr); err == nil && (a == route.IMDSv4 || a == route.IMDSv6) && (port == "" || port == ":80") {
			r.verdict = vContinue
		}
		return "dnat to " + addr + port
	case "counter":
		return "counter"
	case "vmap":
		np.vmapStatement(val)
		return leftText(field[any](val, "key")) + " vmap " + valueText(field[any](val, "data"))
	case "set", "map":
		// Adding to a set lets the packet go on, unless the element carries statements
		// (`update @s { ip saddr limit rate 10/second }`): then the rule goes on only when
		// they match.
		if field[any](val, "stmt") != nil {
			r.conds = append(r.conds, unknownCond)
		}
		return key
	case "log", "mangle", "notrack", "snat", "masquerade":
		// Statements that let the packet go on.
		return key
	case "xt":
		name := field[string](val, "name")
		if field[string](val, "type") == "target" {
			parseTarget(r, false, name, nil, false)
			return "xt target " + name
		}
		if name == "owner" {
			r.owner = true
		}
		r.conds = append(r.conds, unknownCond)
		return "xt match " + name
	}
	// limit, quota and anything newer: a condition imdsmend can't decide.
	r.conds = append(r.conds, unknownCond)
	return key
}

func portSuffix(p any) string {
	if f, ok := p.(float64); ok {
		return ":" + strconv.Itoa(int(f))
	}
	return ""
}

// match decides one `match` for a packet. Negation (op "!=") applies to the comparison
// only: when the packet lacks the field (an IPv4 header on IPv6 traffic, a UDP port, the
// owner of forwarded traffic) nft's rule does not match either way. An ordered comparison
// (<, <=, >, >=) of an address or number is read as the range it covers; an operator not
// modelled here (a bitmask, a comparison of anything else) makes the condition unknown.
func (np nftParsed) match(op string, left, right any, users *userDB) cond {
	neg := op == "!="
	switch op {
	case "", "==", "!=", "in":
	case "<", "<=", ">", ">=":
		var ok bool
		if right, ok = orderedRange(op, right); !ok {
			return unknownCond
		}
	default:
		return unknownCond
	}
	if name, ok := right.(string); ok && strings.HasPrefix(name, "@") || field[[]any](left, "concat") != nil {
		if op != "==" && op != "!=" && op != "" {
			return unknownCond
		}
		return np.lookupCond(left, right, neg)
	}
	val := decodeNftValue(right)
	if pl := field[map[string]any](left, "payload"); pl != nil {
		return np.payloadCond(field[string](pl, "protocol"), field[string](pl, "field"), val, neg)
	}
	if meta := field[map[string]any](left, "meta"); meta != nil {
		return np.metaCond(field[string](meta, "key"), val, neg, users)
	}
	if ct := field[map[string]any](left, "ct"); ct != nil && field[string](ct, "key") == "state" {
		return negate(stateIn(strings.Join(val.strings(), ",")), neg)
	}
	return unknownCond
}

// payloadCond decides a match on a header field (proto fld, e.g. ip daddr, tcp dport).
func (np nftParsed) payloadCond(proto, fld string, val nftValue, neg bool) cond {
	// An ip (ip6) header match only sees IPv4 (IPv6) packets.
	ipv6 := proto == "ip6"
	familyOnly := func(c cond) cond {
		return func(p *packet) outcome {
			if p.v6 != ipv6 {
				return none
			}
			return c(p)
		}
	}
	switch {
	case (proto == "ip" || proto == "ip6") && (fld == "daddr" || fld == "saddr"):
		if val.named {
			return familyOnly(unknownCond)
		}
		in := val.addrs()
		if fld == "saddr" {
			return familyOnly(negate(srcIn(in), neg))
		}
		if !neg && val.narrow(ipv6) {
			np.narrows[ipv6] = true
		}
		return familyOnly(negate(dstIn(in), neg))
	case proto == "ip" && fld == "protocol", proto == "ip6" && fld == "nexthdr":
		return familyOnly(negate(val.matchesName("tcp", 6), neg))
	case proto == "ip" || proto == "ip6":
		return familyOnly(unknownCond)
	case proto == "tcp" || proto == "th":
		switch fld {
		case "dport":
			return negate(func(p *packet) outcome { return boolOutcome(val.containsNum(uint64(p.port))) }, neg)
		case "sport":
			if val.coversNums(1, 65535) {
				return negate(func(*packet) outcome { return all }, neg)
			}
		}
		return unknownCond
	}
	// Another protocol's header (udp, icmp, ...): nft only matches packets of that
	// protocol, and IMDS requests are TCP.
	return func(*packet) outcome { return none }
}

// metaCond decides a match on packet metadata (meta key, e.g. oifname, skuid).
func (np nftParsed) metaCond(key string, val nftValue, neg bool, users *userDB) cond {
	switch key {
	case "l4proto":
		return negate(val.matchesName("tcp", 6), neg)
	case "nfproto", "protocol":
		names := map[string][2]string{"nfproto": {"ipv4", "ipv6"}, "protocol": {"ip", "ip6"}}[key]
		return negate(func(p *packet) outcome {
			if p.v6 {
				return boolOutcome(val.hasString(names[1]))
			}
			return boolOutcome(val.hasString(names[0]))
		}, neg)
	case "oifname", "oif":
		return negate(func(p *packet) outcome {
			if p.oif == "" {
				return unknown
			}
			return boolOutcome(val.matchesIface(p.oif))
		}, neg)
	case "iifname", "iif":
		// Local traffic has no input interface: nft's match breaks.
		return func(p *packet) outcome {
			if p.class != classForwarded {
				return none
			}
			return some
		}
	case "skuid", "skgid":
		np.rule.owner = true
		ranges, ok := val.idRanges(users, key == "skuid")
		owner := negate(ownerRanges(ranges, ok, key == "skuid"), neg)
		return func(p *packet) outcome {
			if p.class == classForwarded {
				return none
			}
			return owner(p)
		}
	}
	return unknownCond
}

// leftText is a match's left-hand side as nft prints it.
func leftText(left any) string {
	if parts := field[[]any](left, "concat"); parts != nil {
		texts := make([]string, len(parts))
		for i, p := range parts {
			texts[i] = leftText(p)
		}
		return strings.Join(texts, " . ")
	}
	if ng := field[map[string]any](left, "numgen"); ng != nil {
		return "numgen " + field[string](ng, "mode") + " mod " + valueText(ng["mod"])
	}
	if pl := field[map[string]any](left, "payload"); pl != nil {
		return field[string](pl, "protocol") + " " + field[string](pl, "field")
	}
	if meta := field[map[string]any](left, "meta"); meta != nil {
		return "meta " + field[string](meta, "key")
	}
	if ct := field[map[string]any](left, "ct"); ct != nil {
		return "ct " + field[string](ct, "key")
	}
	return jsonText(left)
}

// orderedRange turns the value of an ordered comparison into the range it covers: an
// address (of its family) or a number (up to 2^32-1, the widest field compared).
func orderedRange(op string, v any) (any, bool) {
	var lo, hi any
	switch v := v.(type) {
	case string:
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, false
		}
		first, last := netip.IPv4Unspecified(), netip.AddrFrom4([4]byte{255, 255, 255, 255})
		if a.Is6() {
			first, last = netip.IPv6Unspecified(), netip.AddrFrom16([16]byte{255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255})
		}
		switch op {
		case "<":
			if a == first {
				return map[string]any{"set": []any{}}, true
			}
			lo, hi = first.String(), a.Prev().String()
		case "<=":
			lo, hi = first.String(), v
		case ">":
			if a == last {
				return map[string]any{"set": []any{}}, true
			}
			lo, hi = a.Next().String(), last.String()
		case ">=":
			lo, hi = v, last.String()
		}
	case float64:
		switch op {
		case "<":
			if v <= 0 {
				return map[string]any{"set": []any{}}, true
			}
			lo, hi = 0.0, v-1
		case "<=":
			lo, hi = 0.0, v
		case ">":
			lo, hi = v+1, float64(math.MaxUint32)
		case ">=":
			lo, hi = v, float64(math.MaxUint32)
		}
	default:
		return nil, false
	}
	return map[string]any{"range": []any{lo, hi}}, true
}

// verdictText renders a verdict map's data: "accept", "goto CHAIN", ….
func verdictText(v any) string {
	m, _ := v.(map[string]any)
	for k, val := range m {
		if t := field[string](val, "target"); t != "" {
			return k + " " + t
		}
		return k
	}
	return valueText(v)
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func boolCond(b bool) cond { return func(*packet) outcome { return boolOutcome(b) } }

// ownerRanges matches uids (gids) in ranges against local traffic: root's requests are
// uid 0 and gid 0, other users' are any other uid and a gid imdsmend can't know.
func ownerRanges(ranges [][2]uint64, ok, uid bool) cond {
	return func(p *packet) outcome {
		if !ok {
			return unknown
		}
		best := none
		for _, r := range ranges {
			var o outcome
			switch {
			case p.class == classRoot:
				o = boolOutcome(r[0] == 0)
			case !uid:
				o = some
			case r[0] <= 1 && r[1] >= maxID:
				o = all
			case r[1] >= 1:
				o = some
			}
			best = max(best, o)
		}
		return best
	}
}

// nftValue is the right-hand side of a match: a single value, a prefix, a range, an
// anonymous set of those, or a list of flags. Named sets ("@name") are not resolved.
type nftValue struct {
	items []any // string, float64, netip.Prefix, [2]any (range)
	named bool
}

func decodeNftValue(v any) nftValue {
	var out nftValue
	var add func(x any)
	add = func(x any) {
		switch x := x.(type) {
		case string:
			if strings.HasPrefix(x, "@") {
				out.named = true
				return
			}
			out.items = append(out.items, x)
		case float64:
			out.items = append(out.items, x)
		case []any:
			for _, e := range x {
				add(e)
			}
		case map[string]any:
			if s, ok := x["set"]; ok {
				add(s)
				return
			}
			if p, ok := x["prefix"].(map[string]any); ok {
				addr, _ := p["addr"].(string)
				bits, _ := p["len"].(float64)
				if a, err := netip.ParseAddr(addr); err == nil {
					if pfx, err := a.Prefix(int(bits)); err == nil {
						out.items = append(out.items, pfx)
						return
					}
				}
				out.named = true
				return
			}
			if rg, ok := x["range"].([]any); ok && len(rg) == 2 {
				out.items = append(out.items, [2]any{rg[0], rg[1]})
				return
			}
			out.named = true
		default:
			out.named = true
		}
	}
	add(v)
	return out
}

func (v nftValue) prefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, it := range v.items {
		switch it := it.(type) {
		case netip.Prefix:
			out = append(out, it)
		case string:
			if a, err := netip.ParseAddr(it); err == nil {
				out = append(out, netip.PrefixFrom(a, a.BitLen()))
			}
		}
	}
	return out
}

// narrow reports whether the value holds the IMDS address of its family and nothing
// outside the /8 around it (see narrowSpan).
func (v nftValue) narrow(v6 bool) bool {
	if v.named || len(v.items) == 0 {
		return false
	}
	holds := false
	for _, it := range v.items {
		var lo, hi netip.Addr
		switch it := it.(type) {
		case netip.Prefix:
			lo, hi = it.Masked().Addr(), lastAddr(it)
		case string:
			a, err := netip.ParseAddr(it)
			if err != nil {
				return false
			}
			lo, hi = a, a
		case [2]any:
			s1, _ := it[0].(string)
			s2, _ := it[1].(string)
			var err1, err2 error
			lo, err1 = netip.ParseAddr(s1)
			hi, err2 = netip.ParseAddr(s2)
			if err1 != nil || err2 != nil {
				return false
			}
		default:
			return false
		}
		if !inIMDSNet(lo, hi, v6) {
			return false
		}
		holds = holds || narrowSpan(lo, hi, v6)
	}
	return holds
}

func (v nftValue) addrs() func(netip.Addr) bool {
	prefixes := v.prefixes()
	type span struct{ lo, hi netip.Addr }
	var spans []span
	for _, it := range v.items {
		if rg, ok := it.([2]any); ok {
			lo, _ := rg[0].(string)
			hi, _ := rg[1].(string)
			a, err1 := netip.ParseAddr(lo)
			b, err2 := netip.ParseAddr(hi)
			if err1 == nil && err2 == nil {
				spans = append(spans, span{a, b})
			}
		}
	}
	return func(a netip.Addr) bool {
		for _, p := range prefixes {
			if p.Contains(a) {
				return true
			}
		}
		for _, s := range spans {
			if a.Compare(s.lo) >= 0 && a.Compare(s.hi) <= 0 {
				return true
			}
		}
		return false
	}
}

func (v nftValue) strings() []string {
	var out []string
	for _, it := range v.items {
		if s, ok := it.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func (v nftValue) hasString(want string) bool {
	for _, s := range v.strings() {
		if s == want {
			return true
		}
	}
	return false
}

// matchesName is for protocol values, which nft prints as names or numbers.
func (v nftValue) matchesName(name string, num uint64) cond {
	if v.named {
		return func(*packet) outcome { return unknown }
	}
	return boolCond(v.hasString(name) || v.containsNum(num))
}

func (v nftValue) numRanges() [][2]uint64 {
	var out [][2]uint64
	num := func(x any) (uint64, bool) {
		f, ok := x.(float64)
		if !ok || f < 0 || f > math.MaxUint32 {
			return 0, false
		}
		return uint64(f), true
	}
	for _, it := range v.items {
		switch it := it.(type) {
		case float64:
			if n, ok := num(it); ok {
				out = append(out, [2]uint64{n, n})
			}
		case [2]any:
			lo, ok1 := num(it[0])
			hi, ok2 := num(it[1])
			if ok1 && ok2 {
				out = append(out, [2]uint64{lo, hi})
			}
		}
	}
	return out
}

func (v nftValue) containsNum(n uint64) bool {
	for _, r := range v.numRanges() {
		if n >= r[0] && n <= r[1] {
			return true
		}
	}
	return false
}

func (v nftValue) coversNums(lo, hi uint64) bool {
	for _, r := range v.numRanges() {
		if r[0] <= lo && r[1] >= hi {
			return true
		}
	}
	return false
}

// idRanges resolves uids (gids) given as numbers, ranges or names.
func (v nftValue) idRanges(users *userDB, uid bool) ([][2]uint64, bool) {
	if v.named {
		return nil, false
	}
	ranges := v.numRanges()
	for _, s := range v.strings() {
		n, ok := users.id(s, uid)
		if !ok {
			return nil, false
		}
		ranges = append(ranges, [2]uint64{uint64(n), uint64(n)})
	}
	return ranges, len(ranges) > 0
}

// matchesIface applies nft's interface patterns: a trailing * matches any suffix.
func (v nftValue) matchesIface(name string) bool {
	for _, s := range v.strings() {
		if prefix, ok := strings.CutSuffix(s, "*"); ok && strings.HasPrefix(name, prefix) || s == name {
			return true
		}
	}
	return false
}

// valueText renders a match's right-hand side the way nft prints it.
func valueText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = valueText(e)
		}
		return strings.Join(parts, ",")
	case map[string]any:
		if s, ok := v["set"].([]any); ok {
			parts := make([]string, len(s))
			for i, e := range s {
				parts[i] = valueText(e)
				// A map's element: key : data.
				if pair, ok := e.([]any); ok && len(pair) == 2 {
					parts[i] = valueText(pair[0]) + " : " + verdictText(pair[1])
				}
			}
			return "{ " + strings.Join(parts, ", ") + " }"
		}
		if c, ok := v["concat"].([]any); ok {
			parts := make([]string, len(c))
			for i, e := range c {
				parts[i] = valueText(e)
			}
			return strings.Join(parts, " . ")
		}
		if p, ok := v["prefix"].(map[string]any); ok {
			return valueText(p["addr"]) + "/" + valueText(p["len"])
		}
		if rg, ok := v["range"].([]any); ok && len(rg) == 2 {
			return valueText(rg[0]) + "-" + valueText(rg[1])
		}
	}
	return jsonText(v)
}
