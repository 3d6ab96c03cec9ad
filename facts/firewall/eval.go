package firewall

import (
	"net/netip"
)

// outcome says how much of one kind of IMDS traffic a condition (or a rule) matches. The
// order matters: AND of conditions is their minimum.
type outcome uint8

const (
	// none: no packet of the traffic matches.
	none outcome = iota
	// unknown: the match depends on something imdsmend can't see (a mark, a rate limit).
	unknown
	// some: some packets or some users certainly match, not all (e.g. only NEW packets,
	// only uids 1000-10000).
	some
	// all: every packet of the traffic matches.
	all
)

func and(a, b outcome) outcome { return min(a, b) }

// afterLeave is what remains of traffic after the portion p of it left the chain (by an
// accept or a return).
func afterLeave(remaining, p outcome) outcome {
	switch p {
	case none:
		return remaining
	case all:
		return none
	case unknown:
		return min(remaining, unknown)
	}
	return min(remaining, some)
}

// class is a kind of IMDS traffic; a rule's scope is the set of classes it hits.
type class uint8

const (
	classRoot      class = iota // root's own requests: imdsmend, cloud-init, the SSM agent
	classUser                   // requests of other local users
	classForwarded              // containers' and pods' requests routed through the host
	numClasses
)

// packet describes the TCP traffic to one IMDS endpoint of one class.
type packet struct {
	class class
	v6    bool
	dst   netip.Addr
	port  uint16
	// src is the source address the route picks; invalid when unknown.
	src netip.Addr
	// oif is the interface the route to IMDS leaves by; "" when unknown.
	oif string
	// dstLocal is set when the IMDS address is local to this host (the test namespaces
	// put it on lo); dstKnown says whether the route told us either way.
	dstLocal, dstKnown bool
}

// cond decides one condition of a rule for a packet.
type cond func(p *packet) outcome

// verdict kinds.
const (
	vContinue = iota // counters, logs, marks: the packet goes on
	vAccept
	vReturn
	vJump
	vGoto
	vDrop
	vReject
	vDNAT
	vRedirect
	vQueue
)

// effects name the blocking verdicts in facts.
var effects = map[int]string{vDrop: "drop", vReject: "reject", vDNAT: "dnat", vRedirect: "redirect", vQueue: "queue"}

// fwRule is a parsed rule of either backend.
type fwRule struct {
	chain *fwChain
	pos   int // 1-based position in its chain
	spec  string
	conds []cond
	// verdict and, for jumps, the target chain.
	verdict int
	target  string
	// narrows: a condition limits the destination to a /8 or narrower network holding
	// the IMDS address, so the rule is about IMDS rather than all traffic.
	narrows bool
	// vmap, for a verdict map statement, lists the verdicts a packet's key finds in the
	// map; they take the place of verdict.
	vmap func(p *packet) []vmapHit
	// mapTargets are chains a verdict map may jump to; they make those chains shared
	// unless mapNarrow says every element naming the chain is about IMDS's network.
	mapTargets []string
	mapNarrow  map[string]bool
	// owner: the rule matches on the sending socket's user or group.
	owner bool
	// uncertainVerdict: what the verdict does depends on something unseen (a queue's
	// listener).
	uncertainVerdict bool
	// nft rule handle
	handle int
}

// fwChain is a chain; base chains have a hook (and a policy), user chains don't.
type fwChain struct {
	name   string
	hook   string // "output", "postrouting", "prerouting", "forward" or ""
	policy int    // vAccept or vDrop for base chains
	rules  []*fwRule
}

// fwTable is one table of one backend and family.
type fwTable struct {
	backend string // "nft", "legacy" or "nftables"
	family  string // "ipv4", "ipv6" or "inet" (nftables only)
	name    string
	chains  map[string]*fwChain
	order   []*fwChain
	// referrers lists, per chain name, the rules that jump or go to it; built on first
	// use.
	referrers map[string][]*fwRule
	// load, when set, reads a chain missing from chains on first use (readChains); it
	// returns nil for a name that is no chain.
	load func(name string) *fwChain
	// loadFailed: load could not read a chain, so a walk of this table is incomplete.
	loadFailed bool
}

// chain is the chain named name, nil if there is none; a table that reads chains lazily
// reads it now.
func (t *fwTable) chain(name string) *fwChain {
	c, ok := t.chains[name]
	if ok || t.load == nil {
		return c
	}
	c = t.load(name)
	t.chains[name] = c
	if c != nil {
		t.order = append(t.order, c)
	}
	return c
}

// hookCarries says which traffic classes pass a hook: local output passes output and
// postrouting; forwarded traffic passes prerouting, forward and postrouting.
func hookCarries(hook string, c class) bool {
	switch hook {
	case "output":
		return c != classForwarded
	case "prerouting", "forward":
		return c == classForwarded
	case "postrouting":
		return true
	}
	return false
}

// ruleHits accumulates, per rule, the strongest outcome each class met and whether the
// rule hits more than IMDS.
type ruleHits struct {
	rule  *fwRule
	by    [numClasses]outcome
	broad bool
	// owner: the rule or a jump on a path to it matches the socket owner.
	owner bool
	// leads is, for a jump, the broad rule it leads IMDS traffic to: the jump is the
	// narrowest rule specific to IMDS on that rule's path (see specific).
	leads *fwRule
}

type evaluator struct {
	// steps counts rule visits; a ruleset whose jumps fan out exponentially, or nest
	// deeper than maxDepth, stops the walk and sets truncated.
	steps     int
	truncated bool
	hits      map[*fwRule]*ruleHits
	order     []*ruleHits
	policies  map[*fwChain]*fwRule
	// narrowEntries memoizes narrowEntry.
	narrowEntries map[*fwChain]bool
}

func newEvaluator() *evaluator {
	return &evaluator{hits: map[*fwRule]*ruleHits{}, policies: map[*fwChain]*fwRule{}, narrowEntries: map[*fwChain]bool{}}
}

// trail is what the jumps leading to a rule contribute.
type trail struct {
	// mend is the last jump on the way that is specific to IMDS, nil if none is.
	mend  *fwRule
	owner bool // a rule on the way matches the socket owner
}

// record notes that r stops traffic of class c to the extent o. broad says r hits more
// than IMDS; leads is set when r is a jump recorded for the broad rule it leads to.
func (ev *evaluator) record(r *fwRule, c class, o outcome, pt trail, broad bool, leads *fwRule) {
	h := ev.hits[r]
	if h == nil {
		h = &ruleHits{rule: r, leads: leads}
		ev.hits[r] = h
		ev.order = append(ev.order, h)
	}
	h.by[c] = max(h.by[c], o)
	h.broad = h.broad || broad
	h.owner = h.owner || pt.owner
}

// recordBlock records a blocking rule met on a walk. A rule that is not specific to IMDS
// is broad: deleting it would open whatever else reaches it. Then the last jump on IMDS's
// path that is specific (if any) is recorded too, as the rule whose removal takes IMDS
// traffic, and only it, away from the broad one.
func (ev *evaluator) recordBlock(t *fwTable, r *fwRule, c class, o outcome, pt trail) {
	if ev.specific(t, r) {
		ev.record(r, c, o, pt, false, nil)
		return
	}
	if pt.mend != nil {
		ev.record(pt.mend, c, o, pt, false, r)
	}
	ev.record(r, c, o, pt, true, nil)
}

// specific reports whether a rule only ever sees traffic to IMDS's network: it limits the
// destination itself, or every way into its chain does.
func (ev *evaluator) specific(t *fwTable, r *fwRule) bool {
	return r.narrows || ev.narrowEntry(t, r.chain)
}

// narrowEntry reports whether every way into chain c limits the destination to IMDS's
// network. Every way counts, from any base chain of the table (INPUT and FORWARD too)
// and whatever traffic takes it, since deleting a rule in c opens c to all of them. A
// base chain is entered by all traffic; a chain reached by a loop, or by a verdict map
// that is not specific and has an element naming c for other destinations, is taken as
// entered by all traffic too.
func (ev *evaluator) narrowEntry(t *fwTable, c *fwChain) bool {
	if v, ok := ev.narrowEntries[c]; ok {
		return v
	}
	if c.hook != "" {
		ev.narrowEntries[c] = false
		return false
	}
	ev.narrowEntries[c] = false // while deciding: a loop back here is not narrow
	narrow := true
	for _, ref := range t.refs()[c.name] {
		byMap := (ref.verdict != vJump && ref.verdict != vGoto) || ref.target != c.name
		if !(byMap && ref.mapNarrow[c.name]) && !ev.specific(t, ref) {
			narrow = false
			break
		}
	}
	ev.narrowEntries[c] = narrow
	return narrow
}

// refs indexes, per chain name, the rules that jump, go or may map to it.
func (t *fwTable) refs() map[string][]*fwRule {
	if t.referrers == nil {
		t.referrers = map[string][]*fwRule{}
		for _, c := range t.order {
			for _, r := range c.rules {
				if r.verdict == vJump || r.verdict == vGoto {
					t.referrers[r.target] = append(t.referrers[r.target], r)
				}
				for _, m := range r.mapTargets {
					t.referrers[m] = append(t.referrers[m], r)
				}
			}
		}
	}
	return t.referrers
}

// maxDepth bounds jumps; the kernel refuses loops, but parsed text might not.
const maxDepth = 32

// maxSteps bounds the work of one evaluation (a real ruleset needs a few thousand).
const maxSteps = 1_000_000

// walkBases walks every base chain of tables for each traffic class its hook carries.
// Chains a lazy table reads during the walk are user chains, appended after the bases.
func (ev *evaluator) walkBases(tables []*fwTable, packets map[string]packet) {
	for _, t := range tables {
		for _, c := range t.order {
			if c.hook == "" {
				continue
			}
			for cl := range numClasses {
				if !hookCarries(c.hook, cl) {
					continue
				}
				p := packets[t.family]
				p.class = cl
				ev.evalBase(t, c, &p)
			}
		}
	}
}

// evalBase walks a base chain for one packet. Blocking rules are recorded and do not stop
// the walk: every rule that would block if the ones before it were gone is a blocker,
// so one apply can clear them all. Accepts and returns do stop the part of the traffic
// they cover.
func (ev *evaluator) evalBase(t *fwTable, c *fwChain, p *packet) {
	_, remaining := ev.walk(t, c, p, all, trail{}, 0)
	if c.policy == vDrop && remaining != none {
		ev.record(ev.policyRule(c), p.class, remaining, trail{}, true, nil)
	}
}

// policyRule is a synthetic rule standing for a base chain's DROP policy, one per chain so
// hits from several packets merge.
func (ev *evaluator) policyRule(c *fwChain) *fwRule {
	if r, ok := ev.policies[c]; ok {
		return r
	}
	r := &fwRule{chain: c, spec: "-P " + c.name + " DROP", verdict: vDrop}
	ev.policies[c] = r
	return r
}

// walk evaluates chain c for the traffic portion entry. It returns the portion of entry
// accepted (which ends the base chain) and the portion that comes back out of the chain
// (by a return or by falling off its end) to continue in the caller.
//
// A goto is walked like a jump: what falls off the target's end is then also assumed to
// continue here, which can only add rules to the report, never hide one.
func (ev *evaluator) walk(t *fwTable, c *fwChain, p *packet, entry outcome, pt trail, depth int) (accepted, remaining outcome) {
	if depth > maxDepth || ev.steps > maxSteps {
		ev.truncated = true
		return none, unknown
	}
	w := walkState{remaining: entry}
	for _, r := range c.rules {
		if w.remaining == none {
			break
		}
		ev.steps++
		own := all
		for _, cd := range r.conds {
			if own = and(own, cd(p)); own == none {
				break
			}
		}
		if and(w.remaining, own) == none {
			continue
		}
		rulePath := trail{mend: pt.mend, owner: pt.owner || r.owner}
		if r.vmap == nil {
			ev.verdict(t, r, r.verdict, r.target, own, rulePath, p, depth, &w)
			continue
		}
		// A verdict map: each element the key finds is the rule's verdict for the
		// traffic that finds it; none found lets the traffic go on.
		for _, h := range r.vmap(p) {
			if w.remaining == none {
				break
			}
			ev.verdict(t, r, h.verdict, h.target, and(own, h.o), rulePath, p, depth, &w)
		}
	}
	if w.remaining == none && w.returned == none && w.accepted != none {
		// Every bit of the traffic ended in an accept, piece by piece.
		w.accepted = all
	}
	return w.accepted, w.remaining
}

// walkState is what a chain's walk has found so far: the portions of its entry
// accepted, returned and still going on.
type walkState struct {
	accepted, returned, remaining outcome
}

// verdict applies rule r's verdict (its own, or one its verdict map found) to the portion
// own of the traffic it matches.
func (ev *evaluator) verdict(t *fwTable, r *fwRule, verdict int, target string, own outcome, rulePath trail, p *packet, depth int, w *walkState) {
	eff := and(w.remaining, own)
	if eff == none {
		return
	}
	switch verdict {
	case vAccept:
		w.accepted = max(w.accepted, eff)
		w.remaining = afterLeave(w.remaining, leaving(own, own, eff))
	case vReturn:
		w.returned = max(w.returned, eff)
		w.remaining = afterLeave(w.remaining, leaving(own, own, eff))
	case vJump, vGoto:
		sub := t.chain(target)
		if sub == nil {
			return
		}
		if ev.specific(t, r) {
			rulePath.mend = r
		}
		subAcc, _ := ev.walk(t, sub, p, eff, rulePath, depth+1)
		w.accepted = max(w.accepted, and(subAcc, eff))
		w.remaining = afterLeave(w.remaining, leaving(own, subAcc, and(subAcc, eff)))
	case vDrop, vReject, vDNAT, vRedirect, vQueue:
		o := eff
		if r.uncertainVerdict {
			o = and(o, unknown)
		}
		ev.recordBlock(t, r, p.class, o, rulePath)
	}
}

// leaving is the portion of the remaining traffic that leaves a chain at a rule: all of
// it when the rule matches everything and everything it matched left, else the matched
// portion eff.
func leaving(own, left, eff outcome) outcome {
	if own == all && left == all {
		return all
	}
	return eff
}
