package firewall

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/imdsmend/imdsmend/facts/route"
	"golang.org/x/sys/unix"
)

// Decoding iptables-nft rules from the kernel's register code (issue 16). iptables-nft
// writes each rule as nftables expressions: `-d 10.100.0.1/32 -p tcp --dport 80 -j X`
// arrives as `meta load l4proto`, `cmp eq 6`, `payload load 4b @ network header + 16`,
// `cmp eq 10.100.0.1`, `payload load 2b @ transport header + 2`, `cmp eq 80`, `immediate
// jump X`; matches it can't express natively come as xtables `match` expressions
// (comment, addrtype, conntrack) and targets other than verdicts as `target` (REJECT,
// DNAT, MARK).
//
// decodeXtRule gives the conditions and verdict parseIptablesRule gives the rule's text,
// built by the same functions from the same values, and nothing else: anything it does
// not know to be that exact (an unknown expression or match, a range, an option beside a
// known one) makes the rule undecoded, and the chain is then read as text. So a walk over
// decoded chains decides exactly as one over `iptables -S`.

// nlReg is what an expression loaded into a register: a header field or a meta key, and
// the mask a bitwise applied since.
type nlReg struct {
	loaded               bool
	payload              bool   // a header field; otherwise a meta key
	base, offset, length uint32 // the field
	key                  uint32 // the meta key
	mask                 []byte
}

// nftRegs is the number of register slots: the verdict register, four 16-byte registers
// and sixteen 4-byte ones (NFT_REG32_00 is 8).
const nftRegs = 24

// Where the addresses sit in the IPv4 and IPv6 headers, and the ports in TCP's and UDP's.
const (
	ipv4SrcOffset, ipv4DstOffset = 12, 16
	ipv6SrcOffset, ipv6DstOffset = 8, 24
	srcPortOffset, dstPortOffset = 0, 2
)

// xtDecoder decodes the rules of one family, one after another, reusing its scratch.
type xtDecoder struct {
	v6   bool
	regs [nftRegs]nlReg
	r    fwRule
	// excluded: a destination match leaves IMDS out; failed: something was not decoded.
	excluded, failed bool
	step             func(name, data []byte) bool
}

func newXtDecoder(v6 bool) *xtDecoder {
	d := &xtDecoder{v6: v6}
	d.step = d.expr
	return d
}

// decode decodes one rule's expression list. excluded says the rule's destination leaves
// IMDS out, so it can't meet IMDS's traffic (excludesIMDS decides the same from the text);
// ok is false when the rule can't be decoded exactly.
func (d *xtDecoder) decode(exprs []byte) (r *fwRule, excluded, ok bool) {
	d.regs = [nftRegs]nlReg{}
	d.r = fwRule{conds: d.r.conds[:0]}
	d.excluded, d.failed = false, false
	eachExpr(exprs, d.step)
	if d.excluded || d.failed {
		return nil, d.excluded, !d.failed
	}
	rule := d.r
	rule.conds = slices.Clone(d.r.conds)
	return &rule, false, true
}

// expr decodes one expression; false ends the rule's decode.
func (d *xtDecoder) expr(name, data []byte) bool {
	switch string(name) {
	case "counter":
	case "limit":
		// -m limit, written natively: parseIptablesRule does not model rates either.
		d.r.conds = append(d.r.conds, unknownCond)
	case "payload":
		d.payload(data)
	case "meta":
		d.meta(data)
	case "bitwise":
		d.bitwise(data)
	case "cmp":
		d.cmp(data)
	case "immediate":
		d.immediate(data)
	case "match":
		d.match(data)
	case "target":
		// DNAT's verdict depends on its --to-destination, which is not decoded here.
		target := nlString(attr(data, unix.NFTA_TARGET_NAME))
		d.failed = target == "" || target == "DNAT"
		d.r.target = ""
		parseTarget(&d.r, false, target, nil, d.v6)
	default:
		d.failed = true
	}
	return !d.failed && !d.excluded
}

// reg is register n, nil (and the decode failed) when n is out of range or nothing was
// loaded there.
func (d *xtDecoder) reg(v []byte) *nlReg {
	n, ok := beUint32(v)
	if !ok || n == unix.NFT_REG_VERDICT || n >= nftRegs || !d.regs[n].loaded {
		d.failed = true
		return nil
	}
	return &d.regs[n]
}

// load returns the register an expression writes to, cleared.
func (d *xtDecoder) load(v []byte) *nlReg {
	n, ok := beUint32(v)
	if !ok || n == unix.NFT_REG_VERDICT || n >= nftRegs {
		d.failed = true
		return nil
	}
	d.regs[n] = nlReg{loaded: true}
	return &d.regs[n]
}

func (d *xtDecoder) payload(data []byte) {
	if attr(data, unix.NFTA_PAYLOAD_SREG) != nil {
		d.failed = true // a payload write (a statement), not a match
		return
	}
	reg := d.load(attr(data, unix.NFTA_PAYLOAD_DREG))
	if reg == nil {
		return
	}
	var ok [3]bool
	reg.payload = true
	reg.base, ok[0] = beUint32(attr(data, unix.NFTA_PAYLOAD_BASE))
	reg.offset, ok[1] = beUint32(attr(data, unix.NFTA_PAYLOAD_OFFSET))
	reg.length, ok[2] = beUint32(attr(data, unix.NFTA_PAYLOAD_LEN))
	d.failed = ok != [3]bool{true, true, true}
}

func (d *xtDecoder) meta(data []byte) {
	if attr(data, unix.NFTA_META_SREG) != nil {
		d.failed = true // meta set
		return
	}
	reg := d.load(attr(data, unix.NFTA_META_DREG))
	if reg == nil {
		return
	}
	var ok bool
	reg.key, ok = beUint32(attr(data, unix.NFTA_META_KEY))
	d.failed = !ok
}

// nftaBitwiseOp is NFTA_BITWISE_OP (Linux 5.6), which x/sys/unix leaves out; its absence
// or 0 (NFT_BITWISE_BOOL) is the mask-and-xor form.
const nftaBitwiseOp = 6

func (d *xtDecoder) bitwise(data []byte) {
	if op := attr(data, nftaBitwiseOp); op != nil {
		if v, ok := beUint32(op); !ok || v != 0 {
			d.failed = true
			return
		}
	}
	src := d.reg(attr(data, unix.NFTA_BITWISE_SREG))
	if src == nil || src.mask != nil {
		d.failed = true
		return
	}
	from := *src
	dst := d.load(attr(data, unix.NFTA_BITWISE_DREG))
	if dst == nil {
		return
	}
	mask := attr(attr(data, unix.NFTA_BITWISE_MASK), unix.NFTA_DATA_VALUE)
	xor := attr(attr(data, unix.NFTA_BITWISE_XOR), unix.NFTA_DATA_VALUE)
	length, ok := beUint32(attr(data, unix.NFTA_BITWISE_LEN))
	if !ok || int(length) != len(mask) || len(xor) != len(mask) || strings.Trim(string(xor), "\x00") != "" {
		d.failed = true
		return
	}
	*dst = from
	dst.mask = mask
}

func (d *xtDecoder) cmp(data []byte) {
	reg := d.reg(attr(data, unix.NFTA_CMP_SREG))
	op, ok := beUint32(attr(data, unix.NFTA_CMP_OP))
	value := attr(attr(data, unix.NFTA_CMP_DATA), unix.NFTA_DATA_VALUE)
	if reg == nil || !ok || op != unix.NFT_CMP_EQ && op != unix.NFT_CMP_NEQ || len(value) == 0 {
		d.failed = true
		return
	}
	neg := op == unix.NFT_CMP_NEQ
	if reg.payload {
		d.cmpPayload(reg, value, neg)
		return
	}
	switch {
	case reg.key == unix.NFT_META_MARK:
		// -m mark: parseIptablesRule does not model marks either.
		d.r.conds = append(d.r.conds, unknownCond)
	case reg.mask != nil:
		d.failed = true
	case reg.key == unix.NFT_META_L4PROTO && len(value) == 1:
		d.r.conds = append(d.r.conds, negate(protoIs(strconv.Itoa(int(value[0]))), neg))
	case reg.key == unix.NFT_META_OIFNAME || reg.key == unix.NFT_META_IIFNAME:
		pattern, ok := ifacePattern(value)
		iface := outIface
		if reg.key == unix.NFT_META_IIFNAME {
			iface = inIface
		}
		d.r.conds = append(d.r.conds, negate(iface(pattern), neg))
		d.failed = !ok
	default:
		d.failed = true
	}
}

// ifacePattern is the iptables interface pattern a name comparison stands for:
// iptables-nft compares a whole name with its terminating NUL (and NUL padding), and a
// "eth+" pattern by its prefix alone. ok is false for anything after the NUL, which no
// interface name has.
func ifacePattern(v []byte) (pattern string, ok bool) {
	name, rest, whole := strings.Cut(string(v), "\x00")
	if !whole {
		return name + "+", true
	}
	return name, strings.Trim(rest, "\x00") == ""
}

// cmpPayload decodes a comparison of an address or a port.
func (d *xtDecoder) cmpPayload(reg *nlReg, value []byte, neg bool) {
	addrLen, src, dst := uint32(4), uint32(ipv4SrcOffset), uint32(ipv4DstOffset)
	if d.v6 {
		addrLen, src, dst = 16, ipv6SrcOffset, ipv6DstOffset
	}
	switch {
	case reg.base == unix.NFT_PAYLOAD_NETWORK_HEADER && (reg.offset == src || reg.offset == dst) && reg.length <= addrLen && int(reg.length) == len(value):
		pfx, ok := maskedPrefix(value, reg.mask, int(addrLen))
		if !ok {
			d.failed = true
			return
		}
		isDst := reg.offset == dst
		imds := pfx.Contains(route.IMDSAddr(d.v6))
		if isDst && !neg && !imds {
			d.excluded = true
			return
		}
		in := srcIn
		if isDst {
			in = dstIn
		}
		d.r.conds = append(d.r.conds, negate(in(prefixSet(pfx)), neg))
		d.r.narrows = d.r.narrows || isDst && !neg && imds && pfx.Bits() >= 8
	case reg.base == unix.NFT_PAYLOAD_TRANSPORT_HEADER && reg.mask == nil && reg.length == 2 && len(value) == 2 && (reg.offset == srcPortOffset || reg.offset == dstPortOffset):
		port := strconv.Itoa(int(binary.BigEndian.Uint16(value)))
		c := portIn(port)
		if reg.offset == srcPortOffset {
			c = anyPortRange(port)
		}
		d.r.conds = append(d.r.conds, negate(c, neg))
	default:
		d.failed = true
	}
}

// maskedPrefix is the network a comparison of the first len(value) bytes of an address,
// under mask, stands for; ok is false when the mask is no prefix or the value has bits
// outside it.
func maskedPrefix(value, mask []byte, addrLen int) (netip.Prefix, bool) {
	bits := len(value) * 8
	if mask != nil {
		var ok bool
		if bits, ok = prefixBits(mask); !ok || len(mask) != len(value) {
			return netip.Prefix{}, false
		}
		for i, m := range mask {
			if value[i]&^m != 0 {
				return netip.Prefix{}, false
			}
		}
	}
	full := make([]byte, addrLen)
	copy(full, value)
	addr, _ := netip.AddrFromSlice(full) // 4 or 16 bytes: always an address
	return netip.PrefixFrom(addr, bits), true
}

// prefixBits is the length of the network prefix a mask keeps (ones, then zeros); ok is
// false for any other mask.
func prefixBits(mask []byte) (bits int, ok bool) {
	for i, m := range mask {
		ones := 0
		for ones < 8 && m&(0x80>>ones) != 0 {
			ones++
		}
		if m != byte(0xff<<(8-ones)) || ones < 8 && strings.Trim(string(mask[i+1:]), "\x00") != "" {
			return 0, false
		}
		bits += ones
		if ones < 8 {
			break
		}
	}
	return bits, true
}

func (d *xtDecoder) immediate(data []byte) {
	reg, regOK := beUint32(attr(data, unix.NFTA_IMMEDIATE_DREG))
	verdict, target, ok := nlVerdict(attr(attr(data, unix.NFTA_IMMEDIATE_DATA), unix.NFTA_DATA_VERDICT))
	// iptables-nft writes no continue: a rule without a target has no immediate.
	if !regOK || reg != unix.NFT_REG_VERDICT || !ok || verdict == vContinue {
		d.failed = true
		return
	}
	d.r.verdict, d.r.target = verdict, target
}

// The xtables match structures decoded here (linux/netfilter/xt_*.h), in host byte order.
const (
	// struct xt_tcp and xt_udp: spts[2], dpts[2], then flags.
	xtPortsLen = 8
	// struct xt_addrtype_info_v1: source, dest (u16), flags (u32).
	xtAddrtypeLen          = 8
	xtAddrtypeInvertSource = 0x1
	xtAddrtypeInvertDest   = 0x2
	xtAddrtypeFlags        = 0xf // the inversions and --limit-iface-in/out
	// struct xt_conntrack_mtinfo1-3: match_flags, invert_flags and state_mask follow 146
	// bytes of addresses, masks, expiry, protocol and ports.
	xtConntrackFlags = 146
	xtConntrackState = 0x1 // XT_CONNTRACK_STATE
	// XT_CONNTRACK_STATE_ALIAS: the match was written as -m state.
	xtConntrackStateAlias = 1 << 13
)

// rtnTypes are the address types of xt_addrtype, bit i standing for type i.
var rtnTypes = []string{"UNSPEC", "UNICAST", "LOCAL", "BROADCAST", "ANYCAST", "MULTICAST", "BLACKHOLE", "UNREACHABLE", "PROHIBIT", "THROW", "NAT", "XRESOLVE"}

// ctStates are the conntrack states of xt_conntrack's state_mask (xt_state's statemask
// has the first four bits alike and UNTRACKED at bit 6).
var ctStates = []struct {
	bit  uint16
	name string
}{{1 << 0, "INVALID"}, {1 << 1, "ESTABLISHED"}, {1 << 2, "RELATED"}, {1 << 3, "NEW"}, {1 << 6, "SNAT"}, {1 << 7, "DNAT"}, {1 << 8, "UNTRACKED"}}

// xtStateUntracked is XT_STATE_UNTRACKED of xt_state.
const xtStateUntracked = 1 << 6

func (d *xtDecoder) match(data []byte) {
	name := nlString(attr(data, unix.NFTA_MATCH_NAME))
	rev, revOK := beUint32(attr(data, unix.NFTA_MATCH_REV))
	info := attr(data, unix.NFTA_MATCH_INFO)
	switch {
	case !revOK:
		d.failed = true
	case name == "comment":
	case name == "statistic":
		// --mode random --probability: parseIptablesRule does not model it either.
		d.r.conds = append(d.r.conds, unknownCond)
	case (name == "tcp" || name == "udp") && rev == 0:
		d.failed = !plainPorts(info, name == "tcp")
	case name == "addrtype" && rev == 1:
		d.addrtype(info)
	case name == "conntrack" && rev >= 1 && rev <= 3:
		d.conntrack(info, rev)
	case name == "state" && rev == 0 && len(info) >= 4:
		mask := binary.NativeEndian.Uint32(info)
		if mask&xtStateUntracked != 0 {
			mask = mask&^xtStateUntracked | 1<<8
		}
		d.states(mask, false)
	default:
		d.failed = true
	}
}

// plainPorts reports that a tcp or udp match holds nothing beyond the protocol: every
// source and destination port, no flags, options or inversions (`-m tcp` alone, which
// iptables-nft writes beside the native port comparisons).
func plainPorts(info []byte, tcp bool) bool {
	rest := 1 // xt_udp: invflags
	if tcp {
		rest = 4 // xt_tcp: option, flg_mask, flg_cmp, invflags
	}
	if len(info) < xtPortsLen+rest {
		return false
	}
	for i := 0; i < xtPortsLen; i += 4 {
		if binary.NativeEndian.Uint16(info[i:]) != 0 || binary.NativeEndian.Uint16(info[i+2:]) != 0xffff {
			return false
		}
	}
	return strings.Trim(string(info[xtPortsLen:xtPortsLen+rest]), "\x00") == ""
}

func (d *xtDecoder) addrtype(info []byte) {
	if len(info) < xtAddrtypeLen {
		d.failed = true
		return
	}
	source, dest := binary.NativeEndian.Uint16(info), binary.NativeEndian.Uint16(info[2:])
	flags := binary.NativeEndian.Uint32(info[4:])
	if flags&^xtAddrtypeFlags != 0 {
		d.failed = true
		return
	}
	for _, side := range []struct {
		mask   uint16
		dst    bool
		invert uint32
	}{{source, false, xtAddrtypeInvertSource}, {dest, true, xtAddrtypeInvertDest}} {
		if side.mask == 0 {
			continue
		}
		var names []string
		for i, name := range rtnTypes {
			if side.mask&(1<<i) != 0 {
				names = append(names, name)
			}
		}
		if side.mask>>len(rtnTypes) != 0 {
			d.failed = true
			return
		}
		d.r.conds = append(d.r.conds, negate(addrType(strings.Join(names, ","), side.dst), flags&side.invert != 0))
	}
}

func (d *xtDecoder) conntrack(info []byte, rev uint32) {
	if len(info) < xtConntrackFlags+6 {
		d.failed = true
		return
	}
	matchFlags := binary.NativeEndian.Uint16(info[xtConntrackFlags:])
	invert := binary.NativeEndian.Uint16(info[xtConntrackFlags+2:])
	if matchFlags&^xtConntrackStateAlias != xtConntrackState || invert&^xtConntrackState != 0 {
		d.failed = true // --ctstate alone is all this decodes
		return
	}
	state := binary.NativeEndian.Uint16(info[xtConntrackFlags+4:])
	if rev == 1 {
		state = uint16(info[xtConntrackFlags+4]) // xt_conntrack_mtinfo1's state_mask is one byte
	}
	d.states(uint32(state), invert != 0)
}

// states appends the condition of --state or --ctstate for the states in mask.
func (d *xtDecoder) states(mask uint32, neg bool) {
	var names []string
	for _, s := range ctStates {
		if mask&uint32(s.bit) != 0 {
			names = append(names, s.name)
			mask &^= uint32(s.bit)
		}
	}
	if mask != 0 || len(names) == 0 {
		d.failed = true
		return
	}
	d.r.conds = append(d.r.conds, negate(stateIn(strings.Join(names, ",")), neg))
}
