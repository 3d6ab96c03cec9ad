package firewall

import (
	"net/netip"
	"strings"
)

// Set and map lookups of native nftables rules (`ip daddr @cluster-ips`, `ip daddr . meta
// l4proto . th dport vmap @service-ips`, `ip daddr . tcp dport { 10.0.0.1 . 80 }`): the
// lookup key is built from the IMDS packet and looked up among the elements, so a
// kube-proxy node's thousands of service addresses are decided rather than reported as
// uncertain, and a verdict map element that does match is followed like a jump.

// nftSet is a named or anonymous set or map of one table.
type nftSet struct {
	elems []nftElem
}

// nftElem is one element: a value per component of the key and, in a verdict map, the
// verdict (vAccept … vGoto, with target for a jump or goto).
type nftElem struct {
	key     []nftValue
	verdict int
	target  string
}

// nftSetJSON is a "set" or "map" object of `nft -j list ruleset`.
type nftSetJSON struct {
	Family string `json:"family"`
	Table  string `json:"table"`
	Name   string `json:"name"`
	Elem   []any  `json:"elem"`
}

// parseNftSet reads the elements of a set (map says each element is a [key, data] pair;
// data other than a verdict is kept as vContinue, which sets no chain).
func parseNftSet(elems []any, isMap bool) *nftSet {
	s := &nftSet{elems: make([]nftElem, 0, len(elems))}
	for _, e := range elems {
		var el nftElem
		if isMap {
			pair, ok := e.([]any)
			if !ok || len(pair) != 2 {
				continue
			}
			e = pair[0]
			el.verdict, el.target = verdictOf(pair[1])
		}
		// An element with a comment or timeout is {"elem": {"val": KEY, ...}}.
		if v := field[map[string]any](e, "elem"); v != nil {
			e = v["val"]
		}
		if parts := field[[]any](e, "concat"); parts != nil {
			for _, p := range parts {
				el.key = append(el.key, decodeNftValue(p))
			}
		} else {
			el.key = []nftValue{decodeNftValue(e)}
		}
		s.elems = append(s.elems, el)
	}
	return s
}

// verdictOf reads a verdict map's data: {"accept": null}, {"goto": {"target": "c"}}, ….
func verdictOf(v any) (verdict int, target string) {
	m, _ := v.(map[string]any)
	for k, val := range m {
		switch k {
		case "accept":
			return vAccept, ""
		case "drop":
			return vDrop, ""
		case "return":
			return vReturn, ""
		case "continue":
			return vContinue, ""
		case "jump":
			return vJump, field[string](val, "target")
		case "goto":
			return vGoto, field[string](val, "target")
		}
	}
	return vContinue, ""
}

// keyPart is the value one component of a lookup key takes for a packet: an address, or
// a number (a port, a protocol, whose name nft may print instead), or any number from lo
// to hi (numgen), or unknown (something imdsmend can't see, such as a mark).
type keyPart struct {
	addr    netip.Addr
	num     uint64
	name    string
	lo, hi  uint64
	spread  bool
	unknown bool
}

// keyOf returns, per packet, the parts of the lookup key the expression builds; the
// outcome is none when the packet lacks a field of it (an ip header on IPv6 traffic, a
// UDP port), so the lookup never matches.
func keyOf(expr any) func(p *packet) ([]keyPart, outcome) {
	sels := []any{expr}
	if parts := field[[]any](expr, "concat"); parts != nil {
		sels = parts
	}
	return func(p *packet) ([]keyPart, outcome) {
		key := make([]keyPart, len(sels))
		for i, s := range sels {
			k, ok := selectorValue(s, p)
			if !ok {
				return nil, none
			}
			key[i] = k
		}
		return key, all
	}
}

// selectorValue is the packet's value for one selector; ok is false when the packet
// has no such field.
func selectorValue(sel any, p *packet) (keyPart, bool) {
	if pl := field[map[string]any](sel, "payload"); pl != nil {
		proto, fld := field[string](pl, "protocol"), field[string](pl, "field")
		switch {
		case proto == "ip" || proto == "ip6":
			if p.v6 != (proto == "ip6") {
				return keyPart{}, false
			}
			switch fld {
			case "daddr":
				return keyPart{addr: p.dst}, true
			case "saddr":
				if p.src.IsValid() {
					return keyPart{addr: p.src}, true
				}
			case "protocol", "nexthdr":
				return keyPart{num: 6, name: "tcp"}, true
			}
		case proto == "tcp" || proto == "th":
			if fld == "dport" {
				return keyPart{num: uint64(p.port)}, true
			}
		default:
			// Another protocol's header: IMDS requests are TCP.
			return keyPart{}, false
		}
		return keyPart{unknown: true}, true
	}
	if meta := field[map[string]any](sel, "meta"); meta != nil {
		switch field[string](meta, "key") {
		case "l4proto":
			return keyPart{num: 6, name: "tcp"}, true
		case "nfproto":
			return keyPart{name: map[bool]string{false: "ipv4", true: "ipv6"}[p.v6]}, true
		}
		return keyPart{unknown: true}, true
	}
	if ng := field[map[string]any](sel, "numgen"); ng != nil {
		mod, offset := field[float64](ng, "mod"), field[float64](ng, "offset")
		if mod >= 1 {
			return keyPart{lo: uint64(offset), hi: uint64(offset + mod - 1), spread: true}, true
		}
	}
	return keyPart{unknown: true}, true
}

// holds says how much of the packet's traffic has the value k in v.
func (v nftValue) holds(k keyPart) outcome {
	switch {
	case k.unknown:
		return unknown
	case k.addr.IsValid():
		return boolOutcome(v.addrs()(k.addr))
	case k.spread:
		if v.coversNums(k.lo, k.hi) {
			return all
		}
		for _, r := range v.numRanges() {
			if r[0] <= k.hi && r[1] >= k.lo {
				return some
			}
		}
		return none
	}
	return boolOutcome(v.containsNum(k.num) || k.name != "" && v.hasString(k.name))
}

// setHit is an element a packet's key may find, and how much of the traffic finds it.
type setHit struct {
	elem *nftElem
	o    outcome
}

// lookup lists the elements the key finds.
func (s *nftSet) lookup(key []keyPart) []setHit {
	var hits []setHit
	for i := range s.elems {
		e := &s.elems[i]
		if len(e.key) != len(key) {
			hits = append(hits, setHit{e, unknown})
			continue
		}
		o := all
		for j, k := range key {
			if o = and(o, e.key[j].holds(k)); o == none {
				break
			}
		}
		if o != none {
			hits = append(hits, setHit{e, o})
		}
	}
	return hits
}

// setOf resolves a lookup's right-hand side: "@name" in this table's sets, an anonymous
// set, or a single value. nil when a named set is not known.
func (np nftParsed) setOf(right any, isMap bool) *nftSet {
	if name, ok := right.(string); ok && strings.HasPrefix(name, "@") {
		return np.sets[name[1:]]
	}
	if elems := field[[]any](right, "set"); elems != nil {
		return parseNftSet(elems, isMap)
	}
	return parseNftSet([]any{right}, isMap)
}

// lookupCond decides `KEY @set` and `KEY { … }` with a concatenated key.
func (np nftParsed) lookupCond(left, right any, neg bool) cond {
	set := np.setOf(right, false)
	if set == nil {
		return unknownCond
	}
	key := keyOf(left)
	return func(p *packet) outcome {
		k, o := key(p)
		if o == none {
			return none
		}
		found := none
		for _, h := range set.lookup(k) {
			found = max(found, h.o)
		}
		if neg {
			return map[outcome]outcome{none: all, unknown: unknown, some: some, all: none}[found]
		}
		return found
	}
}

// vmapHit is a verdict a packet's key finds in a verdict map.
type vmapHit struct {
	verdict int
	target  string
	o       outcome
}

// vmapStatement makes the rule's verdict the map's: r.vmap lists, per packet, the
// verdicts its key finds (the walk takes each like the rule's own verdict), and
// mapTargets the chains it may send traffic to, which makes them shared unless every
// element naming a chain limits the destination to IMDS's network (mapNarrow). A named
// map that was not read leaves the rule without a verdict.
func (np nftParsed) vmapStatement(val any) {
	r := np.rule
	set := np.setOf(field[any](val, "data"), true)
	if set == nil {
		return
	}
	key := keyOf(field[any](val, "key"))
	r.vmap = func(p *packet) []vmapHit {
		k, o := key(p)
		if o == none {
			return nil
		}
		var out []vmapHit
		for _, h := range set.lookup(k) {
			out = append(out, vmapHit{h.elem.verdict, h.elem.target, h.o})
		}
		return out
	}
	for _, e := range set.elems {
		if e.verdict != vJump && e.verdict != vGoto {
			continue
		}
		r.mapTargets = append(r.mapTargets, e.target)
		for fam, v6 := range [2]bool{false, true} {
			narrow, seen := np.mapNarrow[fam][e.target]
			np.mapNarrow[fam][e.target] = (narrow || !seen) && e.narrow(v6)
		}
	}
}

// narrow says the element limits the destination to IMDS's network (see nftValue.narrow):
// one of its components is such an address.
func (e nftElem) narrow(v6 bool) bool {
	for _, v := range e.key {
		if v.narrow(v6) {
			return true
		}
	}
	return false
}
