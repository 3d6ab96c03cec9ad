package firewall

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/imdsmend/imdsmend/facts/route"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Native nftables tables judged over netlink (issue 16). On a kube-proxy node in nftables
// mode `nft -j list ruleset` prints 8,000 chains and 4,400 map and set elements as 7 MB
// of JSON, taking longer than the rest of a run together. IMDS's path through them is a
// dozen chains and one lookup per map. So, before that full read, the chains on IMDS's
// path are dumped over netlink and their register code run on IMDS's packet: the fields
// every request to IMDS has (destination address, TCP, port 80, the family) are known,
// everything else (source, marks, conntrack state, interfaces, owners) is unknown, and a
// set or map lookup whose key is known is decided with the set's elements, dumped too.
//
// As for iptables-nft (readChains), this pass only answers "nothing on IMDS's path stops
// or diverts it". A condition it decides is one the JSON reader decides the same way
// (both see the same address, protocol and port); one it can't decide is unknown, which
// can only make it find more, and anything it can't run (an expression it does not know,
// a set it can't read) makes the caller read everything as before.

// nftFamilyNumbers are the netlink numbers of the families IMDS's traffic passes.
var nftFamilyNumbers = map[string]uint8{"ip": unix.NFPROTO_IPV4, "ip6": unix.NFPROTO_IPV6, "inet": unix.NFPROTO_INET}

// nftHooks names the hooks of the ip, ip6 and inet families as the JSON reader does.
var nftHooks = map[uint32]string{
	unix.NF_INET_PRE_ROUTING: "prerouting", unix.NF_INET_LOCAL_IN: "input", unix.NF_INET_FORWARD: "forward",
	unix.NF_INET_LOCAL_OUT: "output", unix.NF_INET_POST_ROUTING: "postrouting", nfInetIngress: "ingress",
}

// Kernel constants x/sys/unix leaves out.
const (
	nfInetIngress         = 5    // NF_INET_INGRESS
	nftSetConcat          = 0x80 // NFT_SET_CONCAT
	nftaSetElemKeyEnd     = 10   // NFTA_SET_ELEM_KEY_END
	nftaSetDescConcat     = 2    // NFTA_SET_DESC_CONCAT
	nftaSetFieldLen       = 1    // NFTA_SET_FIELD_LEN
	nftaObjrefTypeCounter = 1    // NFT_OBJECT_COUNTER
	nftaDynsetExpr        = 7    // NFTA_DYNSET_EXPR
	nftaDynsetExpressions = 10   // NFTA_DYNSET_EXPRESSIONS
)

// nftNetlinkTable reads one native table's chains and sets for one packet family.
type nftNetlinkTable struct {
	id      nftTableID
	nfproto uint8
	v6      bool
	t       *fwTable
	sets    *nlSets
}

// nlSets caches a table's sets and maps by name, for the walks of both families of an
// inet table; nil marks one that could not be read.
type nlSets struct {
	mu sync.Mutex
	m  map[string]*nlSet
	// read reads a set's description: readNlSet, or what a test stands in for the kernel.
	read func(nfproto uint8, table, name string) *nlSet
}

// readNativeTables prepares, for each native table, a table per packet family whose
// chains are read over netlink when the walk reaches them (tables of other families are
// left out: no IMDS request passes them). ok is false when a base chain on IMDS's path
// can't be read or run.
func readNativeTables(tables []nftTableID, bases []nftChainID) (out []*fwTable, ok bool) {
	for _, id := range tables {
		fams := packetFamilies(id.family)
		if len(fams) == 0 || iptablesNftFamily(id) != "" {
			continue // arp, bridge, netdev carry no IP traffic to IMDS; iptables-nft's own
		}
		sets := &nlSets{m: map[string]*nlSet{}, read: readNlSet}
		for _, fam := range fams {
			nt := &nftNetlinkTable{id: id, nfproto: nftFamilyNumbers[id.family], v6: fam == "ipv6", sets: sets}
			nt.t = &fwTable{backend: "nftables", family: fam, name: id.String(), chains: map[string]*fwChain{}}
			for _, b := range bases {
				if b.table != id || !hookCarries(b.hook, classRoot) && !hookCarries(b.hook, classForwarded) {
					continue // input and ingress chains: no IMDS request passes them
				}
				c := nt.chain(b.name)
				if c == nil {
					return nil, false
				}
				c.hook, c.policy = b.hook, vAccept
				if b.drop {
					c.policy = vDrop
				}
				nt.t.chains[b.name] = c
				nt.t.order = append(nt.t.order, c)
			}
			nt.t.load = func(name string) *fwChain {
				c := nt.chain(name)
				if c == nil {
					nt.t.loadFailed = true
				}
				return c
			}
			out = append(out, nt.t)
		}
	}
	return out, true
}

// chain dumps and runs one chain's rules; nil when a rule can't be run or the chain
// can't be read.
func (nt *nftNetlinkTable) chain(name string) *fwChain {
	c := &fwChain{name: name}
	failed := false
	err := nftChainRules(nt.nfproto, nt.id.name, name, func(exprs []byte) {
		if failed {
			return
		}
		r, ok := nt.runRule(exprs)
		switch {
		case !ok:
			failed = true
		case r != nil:
			r.chain, r.pos = c, len(c.rules)+1
			c.rules = append(c.rules, r)
		}
	})
	if err != nil || failed {
		return nil
	}
	return c
}

// nlRegs are the 16 four-byte registers (NFT_REG32_00 to _15; NFT_REG_1 to _4 are four
// of them each) as a rule leaves them for IMDS's packet: a byte is known or not.
type nlRegs struct {
	val   [16 * 4]byte
	known [16]bool
	// dst marks words holding the destination address as loaded from the network header:
	// the one field a mask is decided on (as a prefix, which is how the JSON reader sees it).
	dst [16]bool
}

// slot is the first four-byte register of register n.
func slot(n uint32) (int, bool) {
	switch {
	case n >= unix.NFT_REG_1 && n <= unix.NFT_REG_4:
		return int(n-unix.NFT_REG_1) * 4, true
	case n >= unix.NFT_REG32_00 && n <= unix.NFT_REG32_15:
		return int(n - unix.NFT_REG32_00), true
	}
	return 0, false
}

// store writes v (nil: unknown) of length n into register reg; the rest of its last
// four-byte register is zeroed, as the kernel does.
func (rs *nlRegs) store(reg uint32, v []byte, n int) bool {
	s, ok := slot(reg)
	words := (n + 3) / 4
	if !ok || n <= 0 || s+words > len(rs.known) {
		return false
	}
	clear(rs.val[s*4 : (s+words)*4])
	copy(rs.val[s*4:], v)
	for i := range words {
		rs.known[s+i], rs.dst[s+i] = v != nil, false
	}
	return true
}

// markDst notes that register reg's first n bytes are the destination address.
func (rs *nlRegs) markDst(reg uint32, n int) {
	s, _ := slot(reg)
	for i := range (n + 3) / 4 {
		rs.dst[s+i] = true
	}
}

// holdsDst says whether register reg's first n bytes all came from the destination
// address.
func (rs *nlRegs) holdsDst(reg uint32, n int) bool {
	s, ok := slot(reg)
	if !ok || n <= 0 || s+(n+3)/4 > len(rs.dst) {
		return false
	}
	return !slices.Contains(rs.dst[s:s+(n+3)/4], false)
}

// forget makes register reg unknown for up to 16 bytes (the widest value a load
// writes: an interface name, an IPv6 address), or to the last register.
func (rs *nlRegs) forget(reg uint32) bool {
	s, ok := slot(reg)
	if !ok {
		return false
	}
	for i := s; i < min(s+4, len(rs.known)); i++ {
		rs.known[i] = false
	}
	return true
}

// load reads n bytes from register reg; known says every four-byte register of them is.
func (rs *nlRegs) load(reg uint32, n int) (v []byte, known, ok bool) {
	s, ok := slot(reg)
	words := (n + 3) / 4
	if !ok || n <= 0 || s+words > len(rs.known) {
		return nil, false, false
	}
	known = true
	for i := range words {
		known = known && rs.known[s+i]
	}
	return rs.val[s*4 : s*4+n], known, true
}

// nftRun is the state of running one rule.
type nftRun struct {
	nt   *nftNetlinkTable
	regs nlRegs
	r    *fwRule
	// never: a condition is certain not to match; failed: something could not be run.
	never, failed bool
}

// runRule runs one rule's expressions on IMDS's packet. r is nil when a condition
// certainly fails (the rule meets none of IMDS's traffic); ok is false when the rule
// can't be run.
func (nt *nftNetlinkTable) runRule(exprs []byte) (r *fwRule, ok bool) {
	x := &nftRun{nt: nt, r: &fwRule{}}
	eachExpr(exprs, func(name, data []byte) bool {
		x.expr(string(name), data)
		return !x.failed && !x.never
	})
	switch {
	case x.failed:
		return nil, false
	case x.never:
		return nil, true
	}
	return x.r, true
}

func (x *nftRun) expr(name string, data []byte) {
	switch name {
	case "counter", "log", "masq", "notrack":
		// Statements that let the packet go on (nft's counter, log, masquerade, notrack).
	case "dynset":
		// Adding to a set (set add/update, meter) goes on; with expressions on the
		// element (a meter's limit) only when they match, which is unseen.
		if attr(data, nftaDynsetExpr) != nil || attr(data, nftaDynsetExpressions) != nil {
			x.r.conds = append(x.r.conds, unknownCond)
		}
	case "limit", "quota":
		x.r.conds = append(x.r.conds, unknownCond)
	case "payload":
		x.payload(data)
	case "meta":
		x.meta(data)
	case "ct", "numgen", "fib", "rt", "exthdr":
		x.unknownLoad(name, data)
	case "bitwise":
		x.bitwise(data)
	case "cmp":
		x.cmp(data)
	case "range":
		x.rangeExpr(data)
	case "lookup":
		x.lookup(data)
	case "immediate":
		x.immediate(data)
	case "reject":
		x.r.verdict = vReject
	case "redir":
		x.r.verdict = vRedirect
	case "queue":
		x.r.verdict, x.r.uncertainVerdict = vQueue, true
	case "nat":
		// A DNAT is taken as diverting IMDS, even to itself: the full read decides.
		if typ, ok := beUint32(attr(data, unix.NFTA_NAT_TYPE)); !ok || typ != unix.NFT_NAT_SNAT {
			x.r.verdict = vDNAT
		}
	case "objref":
		typ, ok := beUint32(attr(data, unix.NFTA_OBJREF_IMM_TYPE))
		x.failed = !ok || typ != nftaObjrefTypeCounter
	default:
		x.failed = true
	}
}

// dreg reads an expression's destination register attribute.
func dreg(data []byte, typ uint16) (uint32, bool) { return beUint32(attr(data, typ)) }

// unknownLoads are the expressions that load something unseen (conntrack, a random
// number, a route lookup, a TCP option) with the attributes of their destination and, for
// the ones that can also write it (ct set, tcp option set), their source register.
var unknownLoads = map[string]struct{ dreg, sreg uint16 }{
	"ct": {unix.NFTA_CT_DREG, unix.NFTA_CT_SREG}, "numgen": {unix.NFTA_NG_DREG, 0},
	"fib": {1, 0}, "rt": {1, 0}, "exthdr": {1, 7}, // NFTA_FIB_DREG, NFTA_RT_DREG, NFTA_EXTHDR_DREG, _SREG
}

// unknownLoad runs such a load: its register becomes unknown, as wide as any of them
// loads. One that writes is a statement the packet goes past.
func (x *nftRun) unknownLoad(name string, data []byte) {
	a := unknownLoads[name]
	reg, ok := dreg(data, a.dreg)
	switch {
	case ok:
		x.failed = !x.regs.forget(reg)
	case a.sreg == 0 || attr(data, a.sreg) == nil:
		x.failed = true
	}
}

// The IMDS request's header bytes every packet of it has: the protocol and the
// destination address of the network header, the destination port of the transport
// header.
func imdsHeader(base uint32, v6 bool) (hdr []byte, known func(i int) bool) {
	switch {
	case base == unix.NFT_PAYLOAD_NETWORK_HEADER && !v6:
		hdr = make([]byte, 20)
		hdr[9] = unix.IPPROTO_TCP
		imds := route.IMDSv4.As4()
		copy(hdr[ipv4DstOffset:], imds[:])
		return hdr, func(i int) bool { return i == 9 || i >= ipv4DstOffset && i < ipv4DstOffset+4 }
	case base == unix.NFT_PAYLOAD_NETWORK_HEADER:
		hdr = make([]byte, 40)
		hdr[6] = unix.IPPROTO_TCP
		imds := route.IMDSv6.As16()
		copy(hdr[ipv6DstOffset:], imds[:])
		return hdr, func(i int) bool { return i == 6 || i >= ipv6DstOffset && i < ipv6DstOffset+16 }
	case base == unix.NFT_PAYLOAD_TRANSPORT_HEADER:
		hdr = make([]byte, 20)
		binary.BigEndian.PutUint16(hdr[dstPortOffset:], 80)
		return hdr, func(i int) bool { return i == dstPortOffset || i == dstPortOffset+1 }
	}
	return nil, func(int) bool { return false }
}

func (x *nftRun) payload(data []byte) {
	if attr(data, unix.NFTA_PAYLOAD_SREG) != nil {
		return // a header rewrite: the packet goes on
	}
	reg, ok1 := dreg(data, unix.NFTA_PAYLOAD_DREG)
	base, ok2 := beUint32(attr(data, unix.NFTA_PAYLOAD_BASE))
	offset, ok3 := beUint32(attr(data, unix.NFTA_PAYLOAD_OFFSET))
	length, ok4 := beUint32(attr(data, unix.NFTA_PAYLOAD_LEN))
	if !ok1 || !ok2 || !ok3 || !ok4 || length == 0 || length > 16 {
		x.failed = true
		return
	}
	hdr, known := imdsHeader(base, x.nt.v6)
	var v []byte
	if int(offset)+int(length) <= len(hdr) { // in int: a uint32 sum could wrap
		v = hdr[offset : offset+length]
		for i := offset; i < offset+length; i++ {
			if !known(int(i)) {
				v = nil
				break
			}
		}
	}
	x.failed = !x.regs.store(reg, v, int(length))
	dstOffset, addrLen := uint32(ipv4DstOffset), uint32(4)
	if x.nt.v6 {
		dstOffset, addrLen = ipv6DstOffset, 16
	}
	if v != nil && base == unix.NFT_PAYLOAD_NETWORK_HEADER && offset == dstOffset && length <= addrLen {
		x.regs.markDst(reg, int(length))
	}
}

func (x *nftRun) meta(data []byte) {
	if attr(data, unix.NFTA_META_SREG) != nil {
		return // meta set (mark, priority, ...): the packet goes on
	}
	reg, ok := dreg(data, unix.NFTA_META_DREG)
	key, keyOK := beUint32(attr(data, unix.NFTA_META_KEY))
	if !ok || !keyOK {
		x.failed = true
		return
	}
	var v []byte
	switch key {
	case unix.NFT_META_NFPROTO:
		v = []byte{unix.NFPROTO_IPV4}
		if x.nt.v6 {
			v = []byte{unix.NFPROTO_IPV6}
		}
	case unix.NFT_META_L4PROTO:
		v = []byte{unix.IPPROTO_TCP}
	case unix.NFT_META_PROTOCOL:
		v = binary.BigEndian.AppendUint16(nil, unix.ETH_P_IP)
		if x.nt.v6 {
			v = binary.BigEndian.AppendUint16(nil, unix.ETH_P_IPV6)
		}
	default:
		x.failed = !x.regs.forget(reg)
		return
	}
	x.failed = !x.regs.store(reg, v, len(v))
}

func (x *nftRun) bitwise(data []byte) {
	src, ok1 := beUint32(attr(data, unix.NFTA_BITWISE_SREG))
	dst, ok2 := beUint32(attr(data, unix.NFTA_BITWISE_DREG))
	length, ok3 := beUint32(attr(data, unix.NFTA_BITWISE_LEN))
	if !ok1 || !ok2 || !ok3 {
		x.failed = true
		return
	}
	v, known, ok := x.regs.load(src, int(length))
	if !ok {
		x.failed = true
		return
	}
	op, hasOp := beUint32(attr(data, nftaBitwiseOp))
	mask := attr(attr(data, unix.NFTA_BITWISE_MASK), unix.NFTA_DATA_VALUE)
	xor := attr(attr(data, unix.NFTA_BITWISE_XOR), unix.NFTA_DATA_VALUE)
	_, prefix := prefixBits(mask)
	if !known || hasOp && op != 0 || len(mask) != int(length) || len(xor) != int(length) ||
		!prefix || strings.Trim(string(xor), "\x00") != "" || !x.regs.holdsDst(src, int(length)) {
		// A shift, an unknown value, or a mask other than a destination prefix (which
		// the JSON reader sees as a prefix; any other mask it leaves undecided): unknown
		// after.
		x.failed = !x.regs.store(dst, nil, int(length))
		return
	}
	out := make([]byte, length)
	for i := range out {
		out[i] = v[i]&mask[i] ^ xor[i]
	}
	x.failed = !x.regs.store(dst, out, int(length))
}

// decided appends the condition of a comparison: certain when the register was known.
// A certain failure ends the rule.
func (x *nftRun) decided(known, holds bool) {
	switch {
	case !known:
		x.r.conds = append(x.r.conds, unknownCond)
	case !holds:
		x.never = true
	}
}

func (x *nftRun) cmp(data []byte) {
	reg, ok1 := beUint32(attr(data, unix.NFTA_CMP_SREG))
	op, ok2 := beUint32(attr(data, unix.NFTA_CMP_OP))
	value := attr(attr(data, unix.NFTA_CMP_DATA), unix.NFTA_DATA_VALUE)
	v, known, ok := x.regs.load(reg, len(value))
	if !ok1 || !ok2 || !ok || op > unix.NFT_CMP_GTE {
		x.failed = true
		return
	}
	c := bytes.Compare(v, value)
	holds := [...]bool{
		unix.NFT_CMP_EQ: c == 0, unix.NFT_CMP_NEQ: c != 0, unix.NFT_CMP_LT: c < 0,
		unix.NFT_CMP_LTE: c <= 0, unix.NFT_CMP_GT: c > 0, unix.NFT_CMP_GTE: c >= 0,
	}[op]
	x.decided(known, holds)
}

func (x *nftRun) rangeExpr(data []byte) {
	reg, ok1 := beUint32(attr(data, unix.NFTA_RANGE_SREG))
	op, ok2 := beUint32(attr(data, unix.NFTA_RANGE_OP))
	from := attr(attr(data, unix.NFTA_RANGE_FROM_DATA), unix.NFTA_DATA_VALUE)
	to := attr(attr(data, unix.NFTA_RANGE_TO_DATA), unix.NFTA_DATA_VALUE)
	v, known, ok := x.regs.load(reg, len(from))
	if !ok1 || !ok2 || !ok || len(to) != len(from) || op > unix.NFT_RANGE_NEQ {
		x.failed = true
		return
	}
	in := bytes.Compare(v, from) >= 0 && bytes.Compare(v, to) <= 0
	x.decided(known, in == (op == unix.NFT_RANGE_EQ))
}

func (x *nftRun) immediate(data []byte) {
	reg, ok := beUint32(attr(data, unix.NFTA_IMMEDIATE_DREG))
	imm := attr(data, unix.NFTA_IMMEDIATE_DATA)
	if !ok {
		x.failed = true
		return
	}
	if reg != unix.NFT_REG_VERDICT {
		value := attr(imm, unix.NFTA_DATA_VALUE)
		x.failed = !x.regs.store(reg, value, len(value))
		return
	}
	verdict, target, ok := nlVerdict(attr(imm, unix.NFTA_DATA_VERDICT))
	x.r.verdict, x.r.target, x.failed = verdict, target, !ok
}

// nlVerdict reads a verdict (NFTA_VERDICT_CODE and _CHAIN). ok is false for one this
// pass does not follow (break, queue).
func nlVerdict(v []byte) (verdict int, target string, ok bool) {
	code, ok := beUint32(attr(v, unix.NFTA_VERDICT_CODE))
	if !ok {
		return 0, "", false
	}
	switch int32(code) {
	case nfAccept:
		return vAccept, "", true
	case nfDrop:
		return vDrop, "", true
	case unix.NFT_RETURN:
		return vReturn, "", true
	case unix.NFT_CONTINUE:
		return vContinue, "", true
	case unix.NFT_JUMP, unix.NFT_GOTO:
		target = nlString(attr(v, unix.NFTA_VERDICT_CHAIN))
		verdict = vJump
		if int32(code) == unix.NFT_GOTO {
			verdict = vGoto
		}
		return verdict, target, target != ""
	}
	return 0, "", false
}

func (x *nftRun) lookup(data []byte) {
	name := nlString(attr(data, unix.NFTA_LOOKUP_SET))
	reg, ok := beUint32(attr(data, unix.NFTA_LOOKUP_SREG))
	set := x.nt.set(name)
	if name == "" || !ok || set == nil {
		x.failed = true
		return
	}
	key, _, ok := x.regs.load(reg, set.keyLen)
	if !ok {
		x.failed = true
		return
	}
	s, _ := slot(reg)
	known := x.regs.known[s : s+(set.keyLen+3)/4]
	flags, _ := beUint32(attr(data, unix.NFTA_LOOKUP_FLAGS))
	inverted := flags&unix.NFT_LOOKUP_F_INV != 0
	elements := set.elements
	if !set.interval && !slices.Contains(known, false) {
		// A whole key in a set of single values: ask the kernel for that element
		// rather than dump thousands.
		elements = func(f func(e *nlElem)) bool { return set.element(key, f) }
	}
	hits, o, ok := set.find(elements, key, known)
	if !ok {
		x.failed = true
		return
	}
	out, isMap := dreg(data, unix.NFTA_LOOKUP_DREG)
	switch {
	case isMap && out == unix.NFT_REG_VERDICT && !inverted:
		// A verdict map: what the key finds is the rule's verdict; nothing found
		// lets the packet go on.
		vmap := make([]vmapHit, 0, len(hits))
		for _, e := range hits {
			vmap = append(vmap, vmapHit{e.verdict, e.target, o})
		}
		x.r.vmap = func(*packet) []vmapHit { return vmap }
	case isMap && inverted:
		x.failed = true
	case isMap:
		// A data map (dnat to ip daddr map @m): the JSON reader sees no condition in it,
		// only the statement it feeds, and this pass keeps to what that reader decides.
		x.failed = !x.regs.forget(out)
	default:
		found := len(hits) > 0
		x.decided(o != unknown || !found, found != inverted)
	}
}

// nlSet is a set or map of a native table: what a lookup needs to read its elements.
type nlSet struct {
	nfproto     uint8
	table, name string
	keyLen      int
	interval    bool
	// fields are the lengths of a concatenated key's parts, each in its own four-byte
	// registers; nil for a key of one part.
	fields []int
}

// nlElem is one element: its key, the end of its range (interval sets), and in a verdict
// map its verdict.
type nlElem struct {
	key, end    []byte
	intervalEnd bool
	verdict     int
	target      string
}

// set reads the description of the table's set or map name, once.
func (nt *nftNetlinkTable) set(name string) *nlSet {
	nt.sets.mu.Lock()
	defer nt.sets.mu.Unlock()
	if s, ok := nt.sets.m[name]; ok {
		return s
	}
	s := nt.sets.read(nt.nfproto, nt.id.name, name)
	nt.sets.m[name] = s
	return s
}

// readNlSet reads one set's description; nil when it can't be read or there is none.
func readNlSet(nfproto uint8, table, name string) *nlSet {
	var s *nlSet
	// One set asked for by name: a dump would list kube-proxy's thousands of anonymous
	// maps (one per service chain) as well.
	req := nl.NewNetlinkRequest(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETSET, unix.NLM_F_ACK)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: nfproto, Version: unix.NFNETLINK_V0})
	req.AddData(nl.NewRtAttr(unix.NFTA_SET_TABLE, nl.ZeroTerminated(table)))
	req.AddData(nl.NewRtAttr(unix.NFTA_SET_NAME, nl.ZeroTerminated(name)))
	err := netfilterDump(req, func(msg []byte) {
		if len(msg) < nl.SizeofNfgenmsg {
			return
		}
		attrs := msg[nl.SizeofNfgenmsg:]
		if nlString(attr(attrs, unix.NFTA_SET_NAME)) != name || nlString(attr(attrs, unix.NFTA_SET_TABLE)) != table {
			return
		}
		keyLen, ok := beUint32(attr(attrs, unix.NFTA_SET_KEY_LEN))
		flags, _ := beUint32(attr(attrs, unix.NFTA_SET_FLAGS))
		if !ok || keyLen == 0 || keyLen > 64 {
			return
		}
		s = &nlSet{nfproto: nfproto, table: table, name: name, keyLen: int(keyLen), interval: flags&unix.NFT_SET_INTERVAL != 0}
		if flags&nftSetConcat != 0 {
			eachAttr(attr(attr(attrs, unix.NFTA_SET_DESC), nftaSetDescConcat), func(_ uint16, f []byte) bool {
				n, ok := beUint32(attr(f, nftaSetFieldLen))
				if ok {
					s.fields = append(s.fields, int(n))
				}
				return true
			})
		}
	})
	if err != nil {
		return nil
	}
	return s
}

// elements dumps the set's elements and hands each to f, which must not keep its key;
// ok is false when the dump fails or an element can't be read.
func (s *nlSet) elements(f func(e *nlElem)) bool {
	req := s.elementRequest(unix.NLM_F_DUMP)
	return s.readElements(req, f) == nil
}

// element asks for the one element whose key is key (NFT_MSG_GETSETELEM without a dump)
// and hands it to f when there is one.
func (s *nlSet) element(key []byte, f func(e *nlElem)) bool {
	req := s.elementRequest(unix.NLM_F_ACK)
	elems := nl.NewRtAttr(unix.NFTA_SET_ELEM_LIST_ELEMENTS|unix.NLA_F_NESTED, nil)
	elem := elems.AddRtAttr(unix.NFTA_LIST_ELEM|unix.NLA_F_NESTED, nil)
	elem.AddRtAttr(unix.NFTA_SET_ELEM_KEY|unix.NLA_F_NESTED, nil).AddRtAttr(unix.NFTA_DATA_VALUE, key)
	req.AddData(elems)
	err := s.readElements(req, f)
	return err == nil || errors.Is(err, unix.ENOENT) // ENOENT: no such element
}

// elementRequest starts an NFT_MSG_GETSETELEM request for the set.
func (s *nlSet) elementRequest(flags int) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETSETELEM, flags)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: s.nfproto, Version: unix.NFNETLINK_V0})
	req.AddData(nl.NewRtAttr(unix.NFTA_SET_ELEM_LIST_TABLE, nl.ZeroTerminated(s.table)))
	req.AddData(nl.NewRtAttr(unix.NFTA_SET_ELEM_LIST_SET, nl.ZeroTerminated(s.name)))
	return req
}

// errBadElement: the kernel sent an element this reader can't read.
var errBadElement = errors.New("unreadable set element")

// readElements sends req and hands each element of the replies to f.
func (s *nlSet) readElements(req *nl.NetlinkRequest, f func(e *nlElem)) error {
	bad := false
	err := netfilterDump(req, func(msg []byte) {
		if len(msg) < nl.SizeofNfgenmsg || bad {
			return
		}
		eachAttr(attr(msg[nl.SizeofNfgenmsg:], unix.NFTA_SET_ELEM_LIST_ELEMENTS), func(_ uint16, a []byte) bool {
			e, ok := parseNlElem(a, s.keyLen)
			if bad = !ok; !bad {
				f(&e)
			}
			return !bad
		})
	})
	if err == nil && bad {
		return errBadElement
	}
	return err
}

// parseNlElem reads one element of a set's dump; its key and end point into a.
func parseNlElem(a []byte, keyLen int) (nlElem, bool) {
	e := nlElem{verdict: vContinue}
	e.key = attr(attr(a, unix.NFTA_SET_ELEM_KEY), unix.NFTA_DATA_VALUE)
	if end := attr(a, nftaSetElemKeyEnd); end != nil {
		e.end = attr(end, unix.NFTA_DATA_VALUE)
	}
	flags, _ := beUint32(attr(a, unix.NFTA_SET_ELEM_FLAGS))
	e.intervalEnd = flags&unix.NFT_SET_ELEM_INTERVAL_END != 0
	if v := attr(attr(a, unix.NFTA_SET_ELEM_DATA), unix.NFTA_DATA_VERDICT); v != nil {
		var ok bool
		if e.verdict, e.target, ok = nlVerdict(v); !ok {
			return e, false
		}
	}
	return e, len(e.key) == keyLen && (e.end == nil || len(e.end) == keyLen)
}

// elementSource hands a set's elements to f, one at a time; false when they can't be read.
type elementSource func(f func(e *nlElem)) bool

// find lists the elements of the set (read from elements) the key finds, and how
// certainly: all when the key is known, unknown when part of it is not (then every
// element its known parts allow is listed). ok is false when the elements can't be read.
func (s *nlSet) find(elements elementSource, key []byte, known []bool) (hits []nlElem, o outcome, ok bool) {
	whole := !slices.Contains(known, false)
	o = all
	if !whole {
		o = unknown
	}
	keep := func(e *nlElem) {
		c := *e
		c.key, c.end = bytes.Clone(e.key), bytes.Clone(e.end)
		hits = append(hits, c)
	}
	switch {
	case !whole && s.interval:
		// Ranges over partly known keys are not narrowed: every element may match.
		return hits, o, elements(keep)
	case s.interval && len(s.fields) == 0:
		// One-part ranges as the rbtree keeps them: the start of each range and the
		// first key after it, flagged as an interval end. The key is in a range when
		// the greatest element not above it is a start. (An element with its own end
		// is a range by itself.)
		var best *nlElem
		ok = elements(func(e *nlElem) {
			switch {
			case e.end != nil:
				if bytes.Compare(e.key, key) <= 0 && bytes.Compare(key, e.end) <= 0 {
					keep(e)
				}
			case bytes.Compare(e.key, key) <= 0 && (best == nil || bytes.Compare(e.key, best.key) > 0):
				c := *e
				c.key = bytes.Clone(e.key)
				best = &c
			}
		})
		if best != nil && !best.intervalEnd {
			hits = append(hits, *best)
		}
		return hits, o, ok
	}
	ok = elements(func(e *nlElem) {
		if !e.intervalEnd && s.matches(e, key, known) {
			keep(e)
		}
	})
	return hits, o, ok
}

// matches says whether element e holds key, comparing only what is known of it. A set
// of single values (a hash) holds the key when every four-byte word is equal, so each
// known word is compared on its own; a set of ranges compares each part of a
// concatenated key with its range (pipapo) when that part is known.
func (s *nlSet) matches(e *nlElem, key []byte, known []bool) bool {
	if !s.interval {
		for i, k := range known {
			from, to := i*4, min(i*4+4, len(key))
			if k && !bytes.Equal(key[from:to], e.key[from:to]) {
				return false
			}
		}
		return true
	}
	end := e.end
	if end == nil {
		end = e.key
	}
	fields := s.fields
	if len(fields) == 0 {
		fields = []int{len(key)}
	}
	at := 0
	for _, n := range fields {
		words := (n + 3) / 4
		if at+n > len(key) || at/4+words > len(known) {
			return false
		}
		k := key[at : at+n]
		if !slices.Contains(known[at/4:at/4+words], false) &&
			(bytes.Compare(k, e.key[at:at+n]) < 0 || bytes.Compare(k, end[at:at+n]) > 0) {
			return false
		}
		at += words * 4
	}
	return true
}
