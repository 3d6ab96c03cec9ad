package firewall

import (
	"bytes"
	"context"
	"encoding/binary"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The native walk's register code (runRule) and set lookups run without root or a kernel,
// on attributes built with xtnetlink_unit_test.go's builder (nla, nest, be32, xExpr, …).

// nlbVerdict is an NFTA_DATA_VERDICT nested in typ; chain is left out when empty.
func nlbVerdict(typ uint16, code int32, chain string) []byte {
	v := [][]byte{be32(unix.NFTA_VERDICT_CODE, uint32(code))}
	if chain != "" {
		v = append(v, nlStr(unix.NFTA_VERDICT_CHAIN, chain))
	}
	return nest(typ, nest(unix.NFTA_DATA_VERDICT, v...))
}

// nlbCmp is xCmp with the operator first.
func nlbCmp(op, sreg uint32, v []byte) []byte { return xCmp(sreg, op, v) }

func nlbRange(op, sreg uint32, from, to []byte) []byte {
	return xExpr("range", be32(unix.NFTA_RANGE_SREG, sreg), be32(unix.NFTA_RANGE_OP, op),
		nlValue(unix.NFTA_RANGE_FROM_DATA, from), nlValue(unix.NFTA_RANGE_TO_DATA, to))
}

func nlbImmData(dreg uint32, v []byte) []byte {
	return xExpr("immediate", be32(unix.NFTA_IMMEDIATE_DREG, dreg), nlValue(unix.NFTA_IMMEDIATE_DATA, v))
}

func nlbLookup(set string, sreg uint32, extra ...[]byte) []byte {
	return xExpr("lookup", slices.Concat(nlStr(unix.NFTA_LOOKUP_SET, set), be32(unix.NFTA_LOOKUP_SREG, sreg), slices.Concat(extra...)))
}

// Values of IMDS's packet and others.
var (
	nlbIMDS4    = netip.MustParseAddr("169.254.169.254").AsSlice()
	nlbIMDS6    = netip.MustParseAddr("fd00:ec2::254").AsSlice()
	nlbOther4   = netip.MustParseAddr("10.0.0.1").AsSlice()
	nlbPort80   = []byte{0, 80}
	nlbDaddr4   = xPayload(unix.NFT_PAYLOAD_NETWORK_HEADER, 16, 4, unix.NFT_REG_1)
	nlbDaddr6   = xPayload(unix.NFT_PAYLOAD_NETWORK_HEADER, 24, 16, unix.NFT_REG_1)
	nlbDport    = xPayload(unix.NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, unix.NFT_REG_1)
	nlbDrop     = xVerdict(nfDrop, "")
	nlbEqIMDS4  = nlbCmp(unix.NFT_CMP_EQ, unix.NFT_REG_1, nlbIMDS4)
	nlbEqOther4 = nlbCmp(unix.NFT_CMP_EQ, unix.NFT_REG_1, nlbOther4)
)

// nlbTable is a table of family fam for the ipv4 or ipv6 walk, its sets read from sets
// (nil for other names); reads counts the reads per name.
func nlbTable(fam string, v6 bool, sets map[string]*nlSet, reads map[string]int) *nftNetlinkTable {
	return &nftNetlinkTable{
		id: nftTableID{family: fam, name: "imdsmend-unit"}, nfproto: nftFamilyNumbers[fam], v6: v6,
		sets: &nlSets{m: map[string]*nlSet{}, read: func(_ uint8, _, name string) *nlSet {
			if reads != nil {
				reads[name]++
			}
			return sets[name]
		}},
	}
}

func TestNlRegs(t *testing.T) {
	for _, tt := range []struct {
		reg  uint32
		slot int
		ok   bool
	}{
		{unix.NFT_REG_VERDICT, 0, false}, {unix.NFT_REG_1, 0, true}, {unix.NFT_REG_2, 4, true}, {unix.NFT_REG_4, 12, true},
		{unix.NFT_REG_4 + 1, 0, false}, {unix.NFT_REG32_00 - 1, 0, false}, {unix.NFT_REG32_00, 0, true},
		{unix.NFT_REG32_01, 1, true}, {unix.NFT_REG32_15, 15, true}, {unix.NFT_REG32_15 + 1, 0, false},
	} {
		if s, ok := slot(tt.reg); s != tt.slot || ok != tt.ok {
			t.Errorf("slot(%d) = %d, %v; want %d, %v", tt.reg, s, ok, tt.slot, tt.ok)
		}
	}

	var rs nlRegs
	wide := bytes.Repeat([]byte{0xee}, 16)
	if !rs.store(unix.NFT_REG_1, wide, 16) || !rs.store(unix.NFT_REG_4, wide, 16) {
		t.Fatal("16-byte stores in NFT_REG_1 and _4 refused")
	}
	// A 1-byte store into REG_1 zeroes the rest of its four-byte word only.
	if !rs.store(unix.NFT_REG32_00, []byte{7}, 1) {
		t.Fatal("1-byte store refused")
	}
	want := append([]byte{7, 0, 0, 0}, bytes.Repeat([]byte{0xee}, 12)...)
	if v, known, ok := rs.load(unix.NFT_REG_1, 16); !ok || !known || !bytes.Equal(v, want) {
		t.Errorf("after a 1-byte store: %x known %v ok %v, want %x known", v, known, ok, want)
	}
	// A 6-byte store is two words: the second's last two bytes are zeroed.
	rs.store(unix.NFT_REG32_00, []byte{1, 2, 3, 4, 5, 6}, 6)
	if v, _, _ := rs.load(unix.NFT_REG32_00, 12); !bytes.Equal(v, []byte{1, 2, 3, 4, 5, 6, 0, 0, 0xee, 0xee, 0xee, 0xee}) {
		t.Errorf("after a 6-byte store: %x", v)
	}
	if v, _, _ := rs.load(unix.NFT_REG32_01, 2); !bytes.Equal(v, []byte{5, 6}) {
		t.Errorf("load of a 32-bit register: %x, want 0506", v)
	}
	// Unknown values.
	rs.store(unix.NFT_REG32_01, nil, 5)
	if !rs.known[0] || rs.known[1] || rs.known[2] || !rs.known[3] {
		t.Errorf("store of nil: known %v, want words 1 and 2 unknown only", rs.known[:4])
	}
	if _, known, ok := rs.load(unix.NFT_REG32_00, 4); !ok || !known {
		t.Error("word 0 became unknown")
	}
	if _, known, ok := rs.load(unix.NFT_REG32_00, 5); !ok || known {
		t.Error("words 0-1 read as known")
	}
	if _, known, _ := rs.load(unix.NFT_REG32_03, 4); !known {
		t.Error("word 3 became unknown")
	}
	// forget: four words, not past the last register.
	if !rs.forget(unix.NFT_REG_4) || slices.Contains(rs.known[12:], true) || !rs.known[11] && !rs.known[3] {
		t.Errorf("forget(NFT_REG_4): known %v", rs.known)
	}
	rs.store(unix.NFT_REG_1, wide, 16)
	rs.store(unix.NFT_REG_2, wide, 16)
	if !rs.forget(unix.NFT_REG32_01) || rs.known[0] != true || slices.Contains(rs.known[1:5], true) || !rs.known[5] {
		t.Errorf("forget(NFT_REG32_01): known %v, want words 1-4 unknown", rs.known[:6])
	}
	rs.store(unix.NFT_REG_4, wide, 16)
	if !rs.forget(unix.NFT_REG32_14) || !rs.known[13] || rs.known[14] || rs.known[15] {
		t.Errorf("forget(NFT_REG32_14): known %v", rs.known[12:])
	}
	if rs.forget(unix.NFT_REG_VERDICT) || rs.forget(unix.NFT_REG32_15+1) {
		t.Error("forget of no register succeeded")
	}
	// Bounds.
	for _, tt := range []struct {
		reg uint32
		n   int
		ok  bool
	}{
		{unix.NFT_REG32_15, 4, true}, {unix.NFT_REG32_15, 5, false}, {unix.NFT_REG32_12, 16, true},
		{unix.NFT_REG32_13, 16, false}, {unix.NFT_REG_1, 0, false}, {unix.NFT_REG_1, -1, false},
		{unix.NFT_REG_1, 64, true}, {unix.NFT_REG_1, 65, false}, {unix.NFT_REG_VERDICT, 4, false},
	} {
		rs := nlRegs{}
		if ok := rs.store(tt.reg, make([]byte, max(tt.n, 0)), tt.n); ok != tt.ok {
			t.Errorf("store(%d, %d bytes) = %v, want %v", tt.reg, tt.n, ok, tt.ok)
		}
		v, _, ok := rs.load(tt.reg, tt.n)
		if ok != tt.ok || ok && len(v) != tt.n {
			t.Errorf("load(%d, %d) = %d bytes, %v; want %v", tt.reg, tt.n, len(v), ok, tt.ok)
		}
	}
}

// nlbWant is what running a rule gives: ok, a rule at all, its unknown conditions, its
// verdict.
type nlbWant struct {
	ok, rule  bool
	conds     int
	verdict   int
	target    string
	uncertain bool
}

var (
	nlbFails   = nlbWant{}
	nlbNever   = nlbWant{ok: true}
	nlbMatches = nlbWant{ok: true, rule: true, verdict: vDrop}
	nlbMaybe   = nlbWant{ok: true, rule: true, conds: 1, verdict: vDrop}
)

func nlbCheckRun(t *testing.T, name string, r *fwRule, ok bool, want nlbWant) {
	t.Helper()
	got := nlbWant{ok: ok, rule: r != nil}
	if r != nil {
		got.conds, got.verdict, got.target, got.uncertain = len(r.conds), r.verdict, r.target, r.uncertainVerdict
		for _, p := range xtProbePackets(false) {
			for _, c := range r.conds {
				if o := c(&p); o != unknown {
					t.Errorf("%s: a condition gives %d, want unknown", name, o)
				}
			}
		}
	}
	if got != want {
		t.Errorf("%s: got %+v, want %+v", name, got, want)
	}
}

func TestRunRuleSynthetic(t *testing.T) {
	netw, trans := uint32(unix.NFT_PAYLOAD_NETWORK_HEADER), uint32(unix.NFT_PAYLOAD_TRANSPORT_HEADER)
	r1 := uint32(unix.NFT_REG_1)
	eq := func(v ...byte) []byte { return nlbCmp(unix.NFT_CMP_EQ, r1, v) }
	tests := []struct {
		name  string
		fam   string
		v6    bool
		exprs [][]byte
		want  nlbWant
	}{
		// payload: known and unknown header bytes.
		{"ip daddr imds", "ip", false, [][]byte{nlbDaddr4, nlbEqIMDS4, nlbDrop}, nlbMatches},
		{"ip daddr other", "ip", false, [][]byte{nlbDaddr4, nlbEqOther4, nlbDrop}, nlbNever},
		{"ip daddr in 32-bit register", "ip", false, [][]byte{xPayload(netw, 16, 4, unix.NFT_REG32_15), nlbCmp(unix.NFT_CMP_EQ, unix.NFT_REG32_15, nlbIMDS4), nlbDrop}, nlbMatches},
		{"ip saddr", "ip", false, [][]byte{xPayload(netw, 12, 4, r1), nlbEqIMDS4, nlbDrop}, nlbMaybe},
		{"ip protocol tcp", "ip", false, [][]byte{xPayload(netw, 9, 1, r1), eq(unix.IPPROTO_TCP), nlbDrop}, nlbMatches},
		{"ip protocol udp", "ip", false, [][]byte{xPayload(netw, 9, 1, r1), eq(unix.IPPROTO_UDP), nlbDrop}, nlbNever},
		{"ip ttl", "ip", false, [][]byte{xPayload(netw, 8, 1, r1), eq(0), nlbDrop}, nlbMaybe},
		{"ip ttl and protocol", "ip", false, [][]byte{xPayload(netw, 8, 2, r1), eq(0, 6), nlbDrop}, nlbMaybe},
		{"ip daddr's last byte and past", "ip", false, [][]byte{xPayload(netw, 19, 2, r1), eq(254, 0), nlbDrop}, nlbMaybe},
		{"past the ip header", "ip", false, [][]byte{xPayload(netw, 20, 1, r1), eq(0), nlbDrop}, nlbMaybe},
		{"ip6 daddr as in ip", "ip", true, [][]byte{nlbDaddr6, nlbCmp(unix.NFT_CMP_EQ, r1, nlbIMDS6), nlbDrop}, nlbMatches},
		{"ip6 daddr", "ip6", true, [][]byte{nlbDaddr6, nlbCmp(unix.NFT_CMP_EQ, r1, nlbIMDS6), nlbDrop}, nlbMatches},
		{"ip6 daddr other", "ip6", true, [][]byte{nlbDaddr6, nlbCmp(unix.NFT_CMP_EQ, r1, make([]byte, 16)), nlbDrop}, nlbNever},
		{"ip6 daddr's last byte", "ip6", true, [][]byte{xPayload(netw, 39, 1, r1), eq(0x54), nlbDrop}, nlbMatches},
		{"past the ip6 header", "ip6", true, [][]byte{xPayload(netw, 39, 2, r1), eq(0x54, 0), nlbDrop}, nlbMaybe},
		{"ip6 payload length", "ip6", true, [][]byte{xPayload(netw, 23, 1, r1), eq(0), nlbDrop}, nlbMaybe},
		{"ip6 daddr's first byte", "ip6", true, [][]byte{xPayload(netw, 24, 1, r1), eq(0xfd), nlbDrop}, nlbMatches},
		{"ip6 saddr", "ip6", true, [][]byte{xPayload(netw, 8, 16, r1), nlbCmp(unix.NFT_CMP_EQ, r1, nlbIMDS6), nlbDrop}, nlbMaybe},
		{"ip6 nexthdr", "ip6", true, [][]byte{xPayload(netw, 6, 1, r1), eq(unix.IPPROTO_TCP), nlbDrop}, nlbMatches},
		{"ip6 hop limit", "ip6", true, [][]byte{xPayload(netw, 7, 1, r1), eq(unix.IPPROTO_TCP), nlbDrop}, nlbMaybe},
		{"ip6 payload in ip6 layout", "ip6", true, [][]byte{xPayload(netw, 9, 1, r1), eq(unix.IPPROTO_TCP), nlbDrop}, nlbMaybe},
		{"inet ipv4 daddr", "inet", false, [][]byte{nlbDaddr4, nlbEqIMDS4, nlbDrop}, nlbMatches},
		{"inet ipv6 daddr", "inet", true, [][]byte{nlbDaddr6, nlbCmp(unix.NFT_CMP_EQ, r1, nlbIMDS6), nlbDrop}, nlbMatches},
		{"inet ipv6 read as ipv4", "inet", true, [][]byte{nlbDaddr4, nlbEqIMDS4, nlbDrop}, nlbMaybe},
		{"tcp dport 80", "ip", false, [][]byte{nlbDport, eq(0, 80), nlbDrop}, nlbMatches},
		{"tcp dport 443", "inet", true, [][]byte{nlbDport, eq(1, 187), nlbDrop}, nlbNever},
		{"tcp dport's low byte", "ip", false, [][]byte{xPayload(trans, 3, 1, r1), eq(80), nlbDrop}, nlbMatches},
		{"tcp sport", "ip", false, [][]byte{xPayload(trans, 0, 2, r1), eq(0, 80), nlbDrop}, nlbMaybe},
		{"tcp sport's low byte and dport's high", "ip", false, [][]byte{xPayload(trans, 1, 2, r1), eq(0, 0), nlbDrop}, nlbMaybe},
		{"tcp dport and seq", "ip", false, [][]byte{xPayload(trans, 2, 3, r1), eq(0, 80, 0), nlbDrop}, nlbMaybe},
		{"link layer", "ip", false, [][]byte{xPayload(unix.NFT_PAYLOAD_LL_HEADER, 0, 1, r1), eq(0), nlbDrop}, nlbMaybe},
		{"inner header", "ip", false, [][]byte{xPayload(3, 2, 2, r1), eq(0, 80), nlbDrop}, nlbMaybe},
		{"payload at an offset that wraps", "ip", false, [][]byte{xPayload(netw, 0xffffffff, 4, r1), nlbEqIMDS4, nlbDrop}, nlbMaybe},
		{"payload of 16 bytes", "ip", false, [][]byte{xPayload(netw, 0, 16, r1), nlbDrop}, nlbWant{ok: true, rule: true, verdict: vDrop}},
		{"payload of 17 bytes", "ip", false, [][]byte{xPayload(netw, 0, 17, r1), nlbDrop}, nlbFails},
		{"payload of 0 bytes", "ip", false, [][]byte{xPayload(netw, 0, 0, r1), nlbDrop}, nlbFails},
		{"payload into no register", "ip", false, [][]byte{xPayload(netw, 16, 4, 99), nlbDrop}, nlbFails},
		{"payload without a length", "ip", false, [][]byte{xExpr("payload", be32(unix.NFTA_PAYLOAD_DREG, r1), be32(unix.NFTA_PAYLOAD_BASE, netw), be32(unix.NFTA_PAYLOAD_OFFSET, 16)), nlbDrop}, nlbFails},
		{"payload without an offset", "ip", false, [][]byte{xExpr("payload", be32(unix.NFTA_PAYLOAD_DREG, r1), be32(unix.NFTA_PAYLOAD_BASE, netw), be32(unix.NFTA_PAYLOAD_LEN, 4)), nlbDrop}, nlbFails},
		{"payload without a base", "ip", false, [][]byte{xExpr("payload", be32(unix.NFTA_PAYLOAD_DREG, r1), be32(unix.NFTA_PAYLOAD_OFFSET, 16), be32(unix.NFTA_PAYLOAD_LEN, 4)), nlbDrop}, nlbFails},
		{"payload without a register", "ip", false, [][]byte{xExpr("payload", be32(unix.NFTA_PAYLOAD_BASE, netw), be32(unix.NFTA_PAYLOAD_OFFSET, 16), be32(unix.NFTA_PAYLOAD_LEN, 4)), nlbDrop}, nlbFails},
		{"payload write", "ip", false, [][]byte{xExpr("payload", be32(unix.NFTA_PAYLOAD_SREG, r1), be32(unix.NFTA_PAYLOAD_BASE, netw)), nlbDrop}, nlbMatches},
		{"a load overwrites a known register", "ip", false, [][]byte{nlbDaddr4, xPayload(netw, 12, 4, r1), nlbEqIMDS4, nlbDrop}, nlbMaybe},
		// meta.
		{"meta nfproto ipv4", "inet", false, [][]byte{xMeta(unix.NFT_META_NFPROTO, r1), eq(unix.NFPROTO_IPV4), nlbDrop}, nlbMatches},
		{"meta nfproto ipv4 on ipv6", "inet", true, [][]byte{xMeta(unix.NFT_META_NFPROTO, r1), eq(unix.NFPROTO_IPV4), nlbDrop}, nlbNever},
		{"meta nfproto ipv6", "inet", true, [][]byte{xMeta(unix.NFT_META_NFPROTO, r1), eq(unix.NFPROTO_IPV6), nlbDrop}, nlbMatches},
		{"meta l4proto tcp", "ip", false, [][]byte{xMeta(unix.NFT_META_L4PROTO, r1), eq(unix.IPPROTO_TCP), nlbDrop}, nlbMatches},
		{"meta l4proto udp", "ip6", true, [][]byte{xMeta(unix.NFT_META_L4PROTO, r1), eq(unix.IPPROTO_UDP), nlbDrop}, nlbNever},
		{"meta protocol ip", "inet", false, [][]byte{xMeta(unix.NFT_META_PROTOCOL, r1), eq(0x08, 0x00), nlbDrop}, nlbMatches},
		{"meta protocol ip6", "inet", true, [][]byte{xMeta(unix.NFT_META_PROTOCOL, r1), eq(0x86, 0xdd), nlbDrop}, nlbMatches},
		{"meta protocol ip on ipv6", "inet", true, [][]byte{xMeta(unix.NFT_META_PROTOCOL, r1), eq(0x08, 0x00), nlbDrop}, nlbNever},
		{"meta mark", "ip", false, [][]byte{xMeta(unix.NFT_META_MARK, r1), eq(0, 0, 0, 1), nlbDrop}, nlbMaybe},
		{"meta oifname, 16 bytes", "ip", false, [][]byte{nlbDaddr4, xPayload(netw, 16, 4, unix.NFT_REG_4), xMeta(unix.NFT_META_OIFNAME, r1), nlbCmp(unix.NFT_CMP_EQ, unix.NFT_REG_4, nlbIMDS4), nlbCmp(unix.NFT_CMP_EQ, unix.NFT_REG32_03, []byte("eth0")), nlbDrop}, nlbMaybe},
		{"meta mark leaves the next register", "ip", false, [][]byte{xPayload(netw, 16, 4, unix.NFT_REG32_04), xMeta(unix.NFT_META_MARK, unix.NFT_REG32_00), nlbCmp(unix.NFT_CMP_EQ, unix.NFT_REG32_04, nlbIMDS4), nlbDrop}, nlbMatches},
		{"meta mark into no register", "ip", false, [][]byte{xMeta(unix.NFT_META_MARK, 99), nlbDrop}, nlbFails},
		{"meta l4proto into no register", "ip", false, [][]byte{xMeta(unix.NFT_META_L4PROTO, 99), nlbDrop}, nlbFails},
		{"meta without a key", "ip", false, [][]byte{xExpr("meta", be32(unix.NFTA_META_DREG, r1)), nlbDrop}, nlbFails},
		{"meta without a register", "ip", false, [][]byte{xExpr("meta", be32(unix.NFTA_META_KEY, unix.NFT_META_L4PROTO)), nlbDrop}, nlbFails},
		{"meta mark set", "ip", false, [][]byte{xExpr("meta", be32(unix.NFTA_META_KEY, unix.NFT_META_MARK), be32(unix.NFTA_META_SREG, r1)), nlbDrop}, nlbMatches},
		// conntrack and other unseen loads; their writes are statements.
		{"ct state", "ip", false, [][]byte{xExpr("ct", be32(unix.NFTA_CT_DREG, r1), be32(unix.NFTA_CT_KEY, unix.NFT_CT_STATE)), eq(8, 0, 0, 0), nlbDrop}, nlbMaybe},
		{"ct state into no register", "ip", false, [][]byte{xExpr("ct", be32(unix.NFTA_CT_DREG, 99), be32(unix.NFTA_CT_KEY, unix.NFT_CT_STATE)), nlbDrop}, nlbFails},
		{"ct mark set", "ip", false, [][]byte{xExpr("ct", be32(unix.NFTA_CT_SREG, r1), be32(unix.NFTA_CT_KEY, unix.NFT_CT_MARK)), nlbDrop}, nlbMatches},
		{"ct without registers", "ip", false, [][]byte{xExpr("ct", be32(unix.NFTA_CT_KEY, unix.NFT_CT_MARK)), nlbDrop}, nlbFails},
		{"numgen", "ip", false, [][]byte{xExpr("numgen", be32(unix.NFTA_NG_DREG, r1)), eq(0, 0, 0, 0), nlbDrop}, nlbMaybe},
		{"numgen without a register", "ip", false, [][]byte{xExpr("numgen", be32(7, r1)), nlbDrop}, nlbFails},
		{"fib", "ip", false, [][]byte{nlbDaddr4, xExpr("fib", be32(1, r1)), nlbEqIMDS4, nlbDrop}, nlbMaybe},
		{"rt", "ip", false, [][]byte{xExpr("rt", be32(1, unix.NFT_REG32_15)), nlbCmp(unix.NFT_CMP_EQ, unix.NFT_REG32_15, nlbIMDS4), nlbDrop}, nlbMaybe},
		{"exthdr", "ip6", true, [][]byte{xExpr("exthdr", be32(1, r1)), eq(1), nlbDrop}, nlbMaybe},
		{"exthdr set", "ip", false, [][]byte{xExpr("exthdr", be32(7, r1)), nlbDrop}, nlbMatches},
		{"rt without a register", "ip", false, [][]byte{xExpr("rt", be32(7, r1)), nlbDrop}, nlbFails},
		// cmp, range.
		{"cmp lt", "ip", false, [][]byte{nlbDport, nlbCmp(unix.NFT_CMP_LT, r1, []byte{0, 81}), nlbDrop}, nlbMatches},
		{"cmp lt equal", "ip", false, [][]byte{nlbDport, nlbCmp(unix.NFT_CMP_LT, r1, []byte{0, 80}), nlbDrop}, nlbNever},
		{"cmp lte equal", "ip", false, [][]byte{nlbDport, nlbCmp(unix.NFT_CMP_LTE, r1, []byte{0, 80}), nlbDrop}, nlbMatches},
		{"cmp lte below", "ip", false, [][]byte{nlbDport, nlbCmp(unix.NFT_CMP_LTE, r1, []byte{0, 79}), nlbDrop}, nlbNever},
		{"cmp gt", "ip", false, [][]byte{nlbDport, nlbCmp(unix.NFT_CMP_GT, r1, []byte{0, 79}), nlbDrop}, nlbMatches},
		{"cmp gt equal", "ip", false, [][]byte{nlbDport, nlbCmp(unix.NFT_CMP_GT, r1, []byte{0, 80}), nlbDrop}, nlbNever},
		{"cmp gte equal", "ip", false, [][]byte{nlbDport, nlbCmp(unix.NFT_CMP_GTE, r1, []byte{0, 80}), nlbDrop}, nlbMatches},
		{"cmp gte above", "ip", false, [][]byte{nlbDport, nlbCmp(unix.NFT_CMP_GTE, r1, []byte{0, 81}), nlbDrop}, nlbNever},
		{"cmp neq", "ip", false, [][]byte{nlbDport, nlbCmp(unix.NFT_CMP_NEQ, r1, []byte{0, 80}), nlbDrop}, nlbNever},
		{"cmp neq other", "ip", false, [][]byte{nlbDport, nlbCmp(unix.NFT_CMP_NEQ, r1, []byte{0, 81}), nlbDrop}, nlbMatches},
		{"cmp eq other", "ip", false, [][]byte{nlbDport, nlbCmp(unix.NFT_CMP_EQ, r1, []byte{0, 81}), nlbDrop}, nlbNever},
		{"cmp of an unknown op", "ip", false, [][]byte{nlbDport, nlbCmp(unix.NFT_CMP_GTE+1, r1, []byte{0, 80}), nlbDrop}, nlbFails},
		{"cmp of an unknown value", "ip", false, [][]byte{xMeta(unix.NFT_META_MARK, r1), nlbCmp(unix.NFT_CMP_NEQ, r1, []byte{0, 0, 0, 0}), nlbDrop}, nlbMaybe},
		{"cmp of a register never written", "ip", false, [][]byte{nlbCmp(unix.NFT_CMP_EQ, r1, []byte{0, 0, 0, 0}), nlbDrop}, nlbMaybe},
		{"cmp of no register", "ip", false, [][]byte{nlbDport, nlbCmp(unix.NFT_CMP_EQ, 99, []byte{0, 80}), nlbDrop}, nlbFails},
		{"cmp without an op", "ip", false, [][]byte{nlbDport, xExpr("cmp", be32(unix.NFTA_CMP_SREG, r1), nlValue(unix.NFTA_CMP_DATA, nlbPort80)), nlbDrop}, nlbFails},
		{"cmp without a register", "ip", false, [][]byte{nlbDport, xExpr("cmp", be32(unix.NFTA_CMP_OP, unix.NFT_CMP_EQ), nlValue(unix.NFTA_CMP_DATA, nlbPort80)), nlbDrop}, nlbFails},
		{"range eq in", "ip", false, [][]byte{nlbDport, nlbRange(unix.NFT_RANGE_EQ, r1, []byte{0, 80}, []byte{0, 80}), nlbDrop}, nlbMatches},
		{"range eq above", "ip", false, [][]byte{nlbDport, nlbRange(unix.NFT_RANGE_EQ, r1, []byte{0, 81}, []byte{0, 90}), nlbDrop}, nlbNever},
		{"range eq below", "ip", false, [][]byte{nlbDport, nlbRange(unix.NFT_RANGE_EQ, r1, []byte{0, 70}, []byte{0, 79}), nlbDrop}, nlbNever},
		{"range neq in", "ip", false, [][]byte{nlbDport, nlbRange(unix.NFT_RANGE_NEQ, r1, []byte{0, 1}, []byte{4, 0}), nlbDrop}, nlbNever},
		{"range neq out", "ip", false, [][]byte{nlbDport, nlbRange(unix.NFT_RANGE_NEQ, r1, []byte{0, 81}, []byte{4, 0}), nlbDrop}, nlbMatches},
		{"range of an unknown value", "ip", false, [][]byte{xPayload(trans, 0, 2, r1), nlbRange(unix.NFT_RANGE_EQ, r1, []byte{0, 81}, []byte{4, 0}), nlbDrop}, nlbMaybe},
		{"range of an unknown op", "ip", false, [][]byte{nlbDport, nlbRange(unix.NFT_RANGE_NEQ+1, r1, []byte{0, 81}, []byte{4, 0}), nlbDrop}, nlbFails},
		{"range of uneven ends", "ip", false, [][]byte{nlbDport, nlbRange(unix.NFT_RANGE_EQ, r1, []byte{0, 81}, []byte{0, 4, 0}), nlbDrop}, nlbFails},
		{"range of no register", "ip", false, [][]byte{nlbDport, nlbRange(unix.NFT_RANGE_EQ, 99, []byte{0, 81}, []byte{4, 0}), nlbDrop}, nlbFails},
		{"range without an op", "ip", false, [][]byte{nlbDport, xExpr("range", be32(unix.NFTA_RANGE_SREG, r1), nlValue(unix.NFTA_RANGE_FROM_DATA, nlbPort80), nlValue(unix.NFTA_RANGE_TO_DATA, nlbPort80)), nlbDrop}, nlbFails},
		{"range without a register", "ip", false, [][]byte{nlbDport, xExpr("range", be32(unix.NFTA_RANGE_OP, unix.NFT_RANGE_EQ), nlValue(unix.NFTA_RANGE_FROM_DATA, nlbPort80), nlValue(unix.NFTA_RANGE_TO_DATA, nlbPort80)), nlbDrop}, nlbFails},
		// bitwise.
		{"ip daddr 169.254.0.0/16", "ip", false, [][]byte{nlbDaddr4, xBitwise(r1, r1, []byte{255, 255, 0, 0}, make([]byte, 4)), eq(169, 254, 0, 0), nlbDrop}, nlbMatches},
		{"ip daddr 10.0.0.0/8", "ip", false, [][]byte{nlbDaddr4, xBitwise(r1, r1, []byte{255, 0, 0, 0}, make([]byte, 4)), eq(10, 0, 0, 0), nlbDrop}, nlbNever},
		// Only a prefix mask of the destination address is decided (the JSON reader shows it
		// as a prefix and leaves any other mask undecided).
		{"bitwise xor", "ip", false, [][]byte{nlbDaddr4, xBitwise(r1, unix.NFT_REG_2, []byte{255, 255, 255, 255}, []byte{0, 0, 0, 1}), nlbCmp(unix.NFT_CMP_EQ, unix.NFT_REG_2, []byte{169, 254, 169, 255}), nlbCmp(unix.NFT_CMP_EQ, r1, nlbIMDS4), nlbDrop}, nlbMaybe},
		{"bitwise of the destination, not a prefix", "ip", false, [][]byte{nlbDaddr4, xBitwise(r1, r1, []byte{0, 255, 0, 255}, make([]byte, 4)), eq(0, 254, 0, 254), nlbDrop}, nlbMaybe},
		{"bitwise prefix of the port", "ip", false, [][]byte{xPayload(unix.NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, r1), xBitwise(r1, r1, []byte{255, 0}, make([]byte, 2)), nlbCmp(unix.NFT_CMP_EQ, r1, []byte{0, 0}), nlbDrop}, nlbMaybe},
		{"bitwise prefix of a prefix", "ip", false, [][]byte{nlbDaddr4, xBitwise(r1, r1, []byte{255, 255, 255, 0}, make([]byte, 4)), xBitwise(r1, r1, []byte{255, 255, 0, 0}, make([]byte, 4)), eq(169, 254, 0, 0), nlbDrop}, nlbMaybe},
		{"bitwise bool op", "ip", false, [][]byte{nlbDaddr4, xBitwise(r1, r1, []byte{255, 255, 0, 0}, make([]byte, 4), be32(nftaBitwiseOp, 0)), eq(169, 254, 0, 0), nlbDrop}, nlbMatches},
		{"bitwise shift", "ip", false, [][]byte{nlbDaddr4, xBitwise(r1, r1, []byte{255, 255, 0, 0}, make([]byte, 4), be32(nftaBitwiseOp, 1)), eq(169, 254, 0, 0), nlbDrop}, nlbMaybe},
		{"bitwise of an unknown value", "ip", false, [][]byte{xPayload(netw, 12, 4, r1), xBitwise(r1, r1, []byte{0, 0, 0, 0}, make([]byte, 4)), eq(0, 0, 0, 0), nlbDrop}, nlbMaybe},
		{"bitwise of a short mask", "ip", false, [][]byte{nlbDaddr4, xExpr("bitwise", be32(unix.NFTA_BITWISE_SREG, r1), be32(unix.NFTA_BITWISE_DREG, r1), be32(unix.NFTA_BITWISE_LEN, 4), nlValue(unix.NFTA_BITWISE_MASK, []byte{255, 255}), nlValue(unix.NFTA_BITWISE_XOR, make([]byte, 4))), eq(169, 254, 169, 254), nlbDrop}, nlbMaybe},
		{"bitwise of a short xor", "ip", false, [][]byte{nlbDaddr4, xExpr("bitwise", be32(unix.NFTA_BITWISE_SREG, r1), be32(unix.NFTA_BITWISE_DREG, r1), be32(unix.NFTA_BITWISE_LEN, 4), nlValue(unix.NFTA_BITWISE_MASK, make([]byte, 4)), nlValue(unix.NFTA_BITWISE_XOR, []byte{0})), eq(0, 0, 0, 0), nlbDrop}, nlbMaybe},
		{"bitwise of no register", "ip", false, [][]byte{xBitwise(99, r1, []byte{255, 255, 0, 0}, make([]byte, 4)), nlbDrop}, nlbFails},
		{"bitwise into no register", "ip", false, [][]byte{nlbDaddr4, xBitwise(r1, 99, []byte{255, 255, 0, 0}, make([]byte, 4)), nlbDrop}, nlbFails},
		{"bitwise of an unknown value into no register", "ip", false, [][]byte{xBitwise(r1, 99, []byte{255, 255, 0, 0}, make([]byte, 4), be32(nftaBitwiseOp, 1)), nlbDrop}, nlbFails},
		{"bitwise without a length", "ip", false, [][]byte{nlbDaddr4, xExpr("bitwise", be32(unix.NFTA_BITWISE_SREG, r1), be32(unix.NFTA_BITWISE_DREG, r1)), nlbDrop}, nlbFails},
		{"bitwise without a source", "ip", false, [][]byte{nlbDaddr4, xExpr("bitwise", be32(unix.NFTA_BITWISE_DREG, r1), be32(unix.NFTA_BITWISE_LEN, 4)), nlbDrop}, nlbFails},
		{"bitwise without a destination", "ip", false, [][]byte{nlbDaddr4, xExpr("bitwise", be32(unix.NFTA_BITWISE_SREG, r1), be32(unix.NFTA_BITWISE_LEN, 4)), nlbDrop}, nlbFails},
		// immediate.
		{"accept", "ip", false, [][]byte{xVerdict(nfAccept, "")}, nlbWant{ok: true, rule: true, verdict: vAccept}},
		{"drop", "ip", false, [][]byte{xVerdict(nfDrop, "")}, nlbMatches},
		{"return", "ip", false, [][]byte{xVerdict(unix.NFT_RETURN, "")}, nlbWant{ok: true, rule: true, verdict: vReturn}},
		{"continue", "ip", false, [][]byte{xVerdict(unix.NFT_CONTINUE, "")}, nlbWant{ok: true, rule: true, verdict: vContinue}},
		{"jump", "ip", false, [][]byte{xVerdict(unix.NFT_JUMP, "svc")}, nlbWant{ok: true, rule: true, verdict: vJump, target: "svc"}},
		{"goto", "ip", false, [][]byte{xVerdict(unix.NFT_GOTO, "svc")}, nlbWant{ok: true, rule: true, verdict: vGoto, target: "svc"}},
		{"jump to nothing", "ip", false, [][]byte{xVerdict(unix.NFT_JUMP, "")}, nlbFails},
		{"goto to nothing", "ip", false, [][]byte{xVerdict(unix.NFT_GOTO, "")}, nlbFails},
		{"break", "ip", false, [][]byte{xVerdict(unix.NFT_BREAK, "")}, nlbFails},
		{"queue code", "ip", false, [][]byte{xVerdict(3, "")}, nlbFails},
		{"stolen code", "ip", false, [][]byte{xVerdict(2, "")}, nlbFails},
		{"verdict without a code", "ip", false, [][]byte{xExpr("immediate", be32(unix.NFTA_IMMEDIATE_DREG, unix.NFT_REG_VERDICT), nest(unix.NFTA_IMMEDIATE_DATA, nest(unix.NFTA_DATA_VERDICT)))}, nlbFails},
		{"immediate without a register", "ip", false, [][]byte{xExpr("immediate", nlbVerdict(unix.NFTA_IMMEDIATE_DATA, nfDrop, ""))}, nlbFails},
		{"immediate data", "ip", false, [][]byte{nlbImmData(unix.NFT_REG_2, nlbIMDS4), nlbCmp(unix.NFT_CMP_EQ, unix.NFT_REG_2, nlbIMDS4), nlbDrop}, nlbMatches},
		{"immediate data into no register", "ip", false, [][]byte{nlbImmData(99, nlbIMDS4), nlbDrop}, nlbFails},
		{"immediate of no data", "ip", false, [][]byte{xExpr("immediate", be32(unix.NFTA_IMMEDIATE_DREG, unix.NFT_REG_2)), nlbDrop}, nlbFails},
		// other expressions.
		{"dnat", "ip", false, [][]byte{xExpr("nat", be32(unix.NFTA_NAT_TYPE, unix.NFT_NAT_DNAT))}, nlbWant{ok: true, rule: true, verdict: vDNAT}},
		{"snat", "ip", false, [][]byte{xExpr("nat", be32(unix.NFTA_NAT_TYPE, unix.NFT_NAT_SNAT))}, nlbWant{ok: true, rule: true, verdict: vContinue}},
		{"nat of no type", "ip", false, [][]byte{xExpr("nat")}, nlbWant{ok: true, rule: true, verdict: vDNAT}},
		// NFT_OBJECT_COUNTER is 1 in linux/netfilter/nf_tables.h, written here as a number.
		{"named counter", "ip", false, [][]byte{xExpr("objref", be32(unix.NFTA_OBJREF_IMM_TYPE, 1)), nlbDrop}, nlbMatches},
		{"named quota", "ip", false, [][]byte{xExpr("objref", be32(unix.NFTA_OBJREF_IMM_TYPE, 2)), nlbDrop}, nlbFails},
		{"objref of no type", "ip", false, [][]byte{xExpr("objref"), nlbDrop}, nlbFails},
		{"statements", "ip", false, [][]byte{xExpr("counter"), xExpr("log"), xExpr("masq"), xExpr("notrack"), xExpr("dynset"), nlbDrop}, nlbMatches},
		{"limit", "ip", false, [][]byte{xExpr("limit"), nlbDrop}, nlbMaybe},
		{"quota", "ip", false, [][]byte{xExpr("quota"), nlbDrop}, nlbMaybe},
		{"reject", "ip", false, [][]byte{xExpr("reject")}, nlbWant{ok: true, rule: true, verdict: vReject}},
		{"redirect", "ip", false, [][]byte{xExpr("redir")}, nlbWant{ok: true, rule: true, verdict: vRedirect}},
		{"queue", "ip", false, [][]byte{xExpr("queue")}, nlbWant{ok: true, rule: true, verdict: vQueue, uncertain: true}},
		{"socket", "ip", false, [][]byte{xExpr("socket"), nlbDrop}, nlbFails},
		{"an empty name", "ip", false, [][]byte{xExpr(""), nlbDrop}, nlbFails},
		{"no expression", "ip", false, nil, nlbWant{ok: true, rule: true, verdict: vContinue}},
		{"a failed condition ends the rule", "ip", false, [][]byte{nlbDaddr4, nlbEqOther4, xExpr("socket")}, nlbNever},
		{"a failure ends the rule", "ip", false, [][]byte{xExpr("socket"), nlbDaddr4, nlbEqOther4}, nlbFails},
		{"lookup of an unnamed set", "ip", false, [][]byte{nlbDaddr4, nlbLookup("", r1), nlbDrop}, nlbFails},
		{"lookup of a set it can't read", "ip", false, [][]byte{nlbDaddr4, nlbLookup("gone", r1), nlbDrop}, nlbFails},
		{"lookup of ranges it can't read", "ip", false, [][]byte{nlbDaddr4, nlbLookup("iv", r1), nlbDrop}, nlbFails},
		{"lookup of a partly known key in a set it can't read", "ip", false, [][]byte{xPayload(netw, 12, 4, r1), nlbLookup("s", r1), nlbDrop}, nlbFails},
		{"lookup without a register", "ip", false, [][]byte{nlbDaddr4, xExpr("lookup", nlStr(unix.NFTA_LOOKUP_SET, "s")), nlbDrop}, nlbFails},
		{"lookup past the registers", "ip", false, [][]byte{nlbDaddr4, nlbLookup("wide", unix.NFT_REG32_15), nlbDrop}, nlbFails},
	}
	// Elements of s and iv are dumped from a table no kernel here holds, so they can't be
	// read. (A whole key in s would be asked for alone, which a kernel without the table
	// answers as a missing element, and one that refuses us as an error.)
	sets := map[string]*nlSet{
		"s":    {nfproto: unix.NFPROTO_IPV4, table: "imdsmend-unit-none", name: "s", keyLen: 4},
		"iv":   {nfproto: unix.NFPROTO_IPV4, table: "imdsmend-unit-none", name: "iv", keyLen: 4, interval: true},
		"wide": {nfproto: unix.NFPROTO_IPV4, table: "imdsmend-unit-none", name: "wide", keyLen: 8},
	}
	for _, tt := range tests {
		nt := nlbTable(tt.fam, tt.v6, sets, nil)
		r, ok := nt.runRule(slices.Concat(tt.exprs...))
		nlbCheckRun(t, tt.name, r, ok, tt.want)
	}
}

// TestEachExprSkipsOtherAttributes: attributes of the list that are no NFTA_LIST_ELEM
// are passed over, and a name's trailing NULs are not part of it.
func TestEachExprSkipsOtherAttributes(t *testing.T) {
	exprs := slices.Concat(be32(unix.NFTA_LIST_ELEM+1, 7), xExpr("counter"), nest(unix.NFTA_LIST_ELEM, nla(unix.NFTA_EXPR_NAME, []byte("log\x00\x00\x00"))))
	var names []string
	eachExpr(exprs, func(name, data []byte) bool {
		names = append(names, string(name))
		return true
	})
	if !slices.Equal(names, []string{"counter", "log"}) {
		t.Errorf("names %q", names)
	}
}

func TestNlSetsCache(t *testing.T) {
	s := &nlSet{name: "s", keyLen: 4}
	reads := map[string]int{}
	nt := nlbTable("inet", false, map[string]*nlSet{"s": s}, reads)
	nt6 := &nftNetlinkTable{id: nt.id, nfproto: nt.nfproto, v6: true, sets: nt.sets}
	for range 3 {
		if got := nt.set("s"); got != s {
			t.Fatalf("set(s) = %v", got)
		}
		if got := nt6.set("s"); got != s {
			t.Fatalf("set(s) for ipv6 = %v", got)
		}
		if got := nt.set("gone"); got != nil {
			t.Fatalf("set(gone) = %v", got)
		}
	}
	if reads["s"] != 1 || reads["gone"] != 1 || len(reads) != 2 {
		t.Errorf("reads %v, want one of each", reads)
	}
}

// nlbSource stands in for a set's element dump: each element's key is handed over in one
// reused buffer, as the kernel's receive buffer is, so find must copy what it keeps.
func nlbSource(elems ...nlElem) elementSource {
	return func(f func(e *nlElem)) bool {
		var key, end [64]byte
		for _, e := range elems {
			c := e
			c.key = key[:copy(key[:], e.key)]
			if e.end != nil {
				c.end = end[:copy(end[:], e.end)]
			}
			f(&c)
			clear(key[:])
			clear(end[:])
		}
		return true
	}
}

// nlbFailing hands over the elements, then says the dump failed.
func nlbFailing(elems ...nlElem) elementSource {
	src := nlbSource(elems...)
	return func(f func(e *nlElem)) bool {
		src(f)
		return false
	}
}

func nlbCat(parts ...[]byte) []byte { return slices.Concat(parts...) }

func TestNlSetFind(t *testing.T) {
	hash4 := &nlSet{keyLen: 4}
	hash8 := &nlSet{keyLen: 8}
	port := &nlSet{keyLen: 2}
	rbtree := &nlSet{keyLen: 4, interval: true}
	pipapo := &nlSet{keyLen: 8, interval: true, fields: []int{4, 2}}
	start := func(a string) nlElem { return nlElem{key: ip(a)} }
	stop := func(a string) nlElem { return nlElem{key: ip(a), intervalEnd: true} }
	// 10.0.0.0/8 and 169.254.169.255 as the rbtree dumps them, last first.
	ranges := nlbSource(stop("169.254.170.0"), start("169.254.169.255"), stop("11.0.0.0"), start("10.0.0.0"))
	// 169.254.169.0/24 . 80-90 and 10.0.0.0/8 . 0-65535 as pipapo dumps them.
	pip := nlbSource(
		nlElem{key: nlbCat(ip("169.254.169.0"), []byte{0, 80, 0, 0}), end: nlbCat(ip("169.254.169.255"), []byte{0, 90, 0, 0})},
		nlElem{key: nlbCat(ip("10.0.0.0"), []byte{0, 0, 0, 0}), end: nlbCat(ip("10.255.255.255"), []byte{255, 255, 0, 0})},
	)
	// As the kernel dumps {169.254.168.0/24, 169.254.169.0/24}: adjacent ranges keep
	// the first's end beside the second's start, the start first.
	adjacent := nlbSource(stop("169.254.170.0"), start("169.254.169.0"), stop("169.254.169.0"), start("169.254.168.0"), stop("0.0.0.0"))
	// And {0.0.0.0/1, 169.254.169.254, 200.0.0.0-255.255.255.255}: no end after the last.
	open := nlbSource(start("200.0.0.0"), stop("169.254.169.255"), start("169.254.169.254"), stop("128.0.0.0"), start("0.0.0.0"))
	k, u := true, false
	tests := []struct {
		name  string
		set   *nlSet
		elems elementSource
		key   []byte
		known []bool
		hits  [][]byte // the keys found
		o     outcome
		ok    bool
	}{
		{"hash hit", hash4, nlbSource(start("10.0.0.1"), start("169.254.169.254")), nlbIMDS4, []bool{k}, [][]byte{nlbIMDS4}, all, true},
		{"hash miss", hash4, nlbSource(start("10.0.0.1"), start("169.254.169.253")), nlbIMDS4, []bool{k}, nil, all, true},
		{"hash of no element", hash4, nlbSource(), nlbIMDS4, []bool{k}, nil, all, true},
		{"hash of an unknown key", hash4, nlbSource(start("10.0.0.1"), start("169.254.169.254")), nlbIMDS4, []bool{u}, [][]byte{ip("10.0.0.1"), nlbIMDS4}, unknown, true},
		{"hash of a known second word", hash8, nlbSource(
			nlElem{key: nlbCat(ip("10.0.0.5"), nlbIMDS4)}, nlElem{key: nlbCat(ip("10.0.0.5"), ip("10.0.0.6"))}, nlElem{key: nlbCat(nlbIMDS4, ip("10.0.0.6"))}),
			nlbCat(make([]byte, 4), nlbIMDS4), []bool{u, k}, [][]byte{nlbCat(ip("10.0.0.5"), nlbIMDS4)}, unknown, true},
		{"hash of a known first word", hash8, nlbSource(
			nlElem{key: nlbCat(ip("10.0.0.5"), nlbIMDS4)}, nlElem{key: nlbCat(nlbIMDS4, ip("10.0.0.6"))}),
			nlbCat(nlbIMDS4, make([]byte, 4)), []bool{k, u}, [][]byte{nlbCat(nlbIMDS4, ip("10.0.0.6"))}, unknown, true},
		{"hash of a known key, two words", hash8, nlbSource(
			nlElem{key: nlbCat(ip("10.0.0.5"), nlbIMDS4)}, nlElem{key: nlbCat(nlbIMDS4, nlbIMDS4)}),
			nlbCat(nlbIMDS4, nlbIMDS4), []bool{k, k}, [][]byte{nlbCat(nlbIMDS4, nlbIMDS4)}, all, true},
		{"hash, a second word differing in its first byte", hash8, nlbSource(nlElem{key: nlbCat(nlbOther4, ip("168.254.169.254"))}),
			nlbCat(nlbOther4, nlbIMDS4), []bool{k, k}, nil, all, true},
		{"hash of a port", port, nlbSource(nlElem{key: []byte{1, 187}}, nlElem{key: nlbPort80}), nlbPort80, []bool{k}, [][]byte{nlbPort80}, all, true},
		{"hash of a port, missed", port, nlbSource(nlElem{key: []byte{1, 80}}, nlElem{key: []byte{0, 81}}), nlbPort80, []bool{k}, nil, all, true},
		{"hash that fails", hash4, nlbFailing(start("169.254.169.254")), nlbIMDS4, []bool{k}, [][]byte{nlbIMDS4}, all, false},
		{"range hit", rbtree, ranges, ip("10.1.2.3"), []bool{k}, [][]byte{ip("10.0.0.0")}, all, true},
		{"range start", rbtree, ranges, ip("10.0.0.0"), []bool{k}, [][]byte{ip("10.0.0.0")}, all, true},
		{"range end", rbtree, ranges, ip("11.0.0.0"), []bool{k}, nil, all, true},
		{"range's last key", rbtree, ranges, ip("10.255.255.255"), []bool{k}, [][]byte{ip("10.0.0.0")}, all, true},
		{"between ranges", rbtree, ranges, nlbIMDS4, []bool{k}, nil, all, true},
		{"a single-key range", rbtree, ranges, ip("169.254.169.255"), []bool{k}, [][]byte{ip("169.254.169.255")}, all, true},
		{"after the single-key range", rbtree, ranges, ip("169.254.170.0"), []bool{k}, nil, all, true},
		{"after every range", rbtree, ranges, ip("200.0.0.0"), []bool{k}, nil, all, true},
		{"below every range", rbtree, ranges, ip("9.255.255.255"), []bool{k}, nil, all, true},
		{"an open range", rbtree, nlbSource(start("0.0.0.0"), start("169.254.0.0"), stop("170.0.0.0")), ip("200.0.0.0"), []bool{k}, nil, all, true},
		{"in the open range's start", rbtree, nlbSource(stop("170.0.0.0"), start("0.0.0.0"), start("100.0.0.0")), nlbIMDS4, []bool{k}, [][]byte{ip("100.0.0.0")}, all, true},
		{"adjacent ranges, the second", rbtree, adjacent, nlbIMDS4, []bool{k}, [][]byte{ip("169.254.169.0")}, all, true},
		{"adjacent ranges, the first", rbtree, adjacent, ip("169.254.168.5"), []bool{k}, [][]byte{ip("169.254.168.0")}, all, true},
		{"adjacent ranges, at the second's start", rbtree, adjacent, ip("169.254.169.0"), []bool{k}, [][]byte{ip("169.254.169.0")}, all, true},
		{"adjacent ranges, after", rbtree, adjacent, ip("169.254.170.0"), []bool{k}, nil, all, true},
		{"adjacent ranges, before", rbtree, adjacent, ip("1.2.3.4"), []bool{k}, nil, all, true},
		{"a range to the last address", rbtree, open, ip("255.255.255.255"), []bool{k}, [][]byte{ip("200.0.0.0")}, all, true},
		{"a single address among ranges", rbtree, open, nlbIMDS4, []bool{k}, [][]byte{nlbIMDS4}, all, true},
		{"a range from the first address", rbtree, open, ip("127.255.255.255"), []bool{k}, [][]byte{ip("0.0.0.0")}, all, true},
		{"past a range from the first address", rbtree, open, ip("128.0.0.0"), []bool{k}, nil, all, true},
		{"a range with its end", rbtree, nlbSource(nlElem{key: ip("169.254.169.254"), end: ip("169.254.169.255")}), nlbIMDS4, []bool{k}, [][]byte{nlbIMDS4}, all, true},
		{"at a range's end", rbtree, nlbSource(nlElem{key: ip("169.254.169.250"), end: ip("169.254.169.254")}), nlbIMDS4, []bool{k}, [][]byte{ip("169.254.169.250")}, all, true},
		{"past a range's end", rbtree, nlbSource(nlElem{key: ip("169.254.169.250"), end: ip("169.254.169.253")}), nlbIMDS4, []bool{k}, nil, all, true},
		{"before a range with its end", rbtree, nlbSource(nlElem{key: ip("169.254.169.255"), end: ip("169.254.170.0")}), nlbIMDS4, []bool{k}, nil, all, true},
		{"ranges that fail", rbtree, nlbFailing(start("10.0.0.0")), ip("10.0.0.1"), []bool{k}, [][]byte{ip("10.0.0.0")}, all, false},
		{"ranges of an unknown key", rbtree, ranges, nlbIMDS4, []bool{u}, [][]byte{ip("169.254.170.0"), ip("169.254.169.255"), ip("11.0.0.0"), ip("10.0.0.0")}, unknown, true},
		{"ranges of an unknown key that fail", rbtree, nlbFailing(start("10.0.0.0")), nlbIMDS4, []bool{u}, [][]byte{ip("10.0.0.0")}, unknown, false},
		{"pipapo hit", pipapo, pip, nlbCat(nlbIMDS4, []byte{0, 80, 0, 0}), []bool{k, k}, [][]byte{nlbCat(ip("169.254.169.0"), []byte{0, 80, 0, 0})}, all, true},
		{"pipapo at the ends", pipapo, pip, nlbCat(ip("169.254.169.255"), []byte{0, 90, 0, 0}), []bool{k, k}, [][]byte{nlbCat(ip("169.254.169.0"), []byte{0, 80, 0, 0})}, all, true},
		{"pipapo port above", pipapo, pip, nlbCat(nlbIMDS4, []byte{0, 91, 0, 0}), []bool{k, k}, nil, all, true},
		{"pipapo port below", pipapo, pip, nlbCat(nlbIMDS4, []byte{0, 79, 0, 0}), []bool{k, k}, nil, all, true},
		{"pipapo address above", pipapo, pip, nlbCat(ip("169.254.170.0"), []byte{0, 80, 0, 0}), []bool{k, k}, nil, all, true},
		{"pipapo address below", pipapo, pip, nlbCat(ip("169.254.168.255"), []byte{0, 80, 0, 0}), []bool{k, k}, nil, all, true},
		{"pipapo of an unknown key", pipapo, pip, nlbCat(nlbIMDS4, []byte{0, 80, 0, 0}), []bool{u, k}, [][]byte{nlbCat(ip("169.254.169.0"), []byte{0, 80, 0, 0}), nlbCat(ip("10.0.0.0"), make([]byte, 4))}, unknown, true},
		{"pipapo that fails", pipapo, nlbFailing(), nlbCat(nlbIMDS4, []byte{0, 80, 0, 0}), []bool{k, k}, nil, all, false},
	}
	for _, tt := range tests {
		hits, o, ok := tt.set.find(tt.elems, tt.key, tt.known)
		var keys [][]byte
		for _, h := range hits {
			keys = append(keys, h.key)
		}
		if !slices.EqualFunc(keys, tt.hits, bytes.Equal) || o != tt.o || ok != tt.ok {
			t.Errorf("%s: found %x, %d, %v; want %x, %d, %v", tt.name, keys, o, ok, tt.hits, tt.o, tt.ok)
		}
	}
}

// TestNlSetFindKeeps: what find returns is the element's own: its end, its verdict and
// target, copied out of the dump's buffer.
func TestNlSetFindKeeps(t *testing.T) {
	e := nlElem{key: ip("169.254.169.0"), end: ip("169.254.169.255"), verdict: vGoto, target: "svc"}
	for _, s := range []*nlSet{{keyLen: 4, interval: true}, {keyLen: 4, interval: true, fields: []int{4}}} {
		hits, o, ok := s.find(nlbSource(e), nlbIMDS4, []bool{true})
		if !ok || o != all || len(hits) != 1 || !bytes.Equal(hits[0].end, e.end) || hits[0].verdict != vGoto || hits[0].target != "svc" {
			t.Errorf("fields %v: found %+v, %d, %v; want %+v", s.fields, hits, o, ok, e)
		}
		hits, _, _ = s.find(nlbSource(e), nlbIMDS4, []bool{false})
		if len(hits) != 1 || !bytes.Equal(hits[0].end, e.end) || !bytes.Equal(hits[0].key, e.key) {
			t.Errorf("fields %v, unknown key: found %+v", s.fields, hits)
		}
	}
	m := &nlSet{keyLen: 4}
	hits, _, _ := m.find(nlbSource(nlElem{key: nlbIMDS4, verdict: vJump, target: "imds"}, nlElem{key: nlbIMDS4, intervalEnd: true}), nlbIMDS4, []bool{true})
	if len(hits) != 1 || hits[0].verdict != vJump || hits[0].target != "imds" {
		t.Errorf("hash map: found %+v", hits)
	}
}

func TestNlSetMatches(t *testing.T) {
	pipapo := &nlSet{keyLen: 12, interval: true, fields: []int{4, 1, 2}}
	e := &nlElem{key: nlbCat(ip("169.254.169.0"), []byte{6, 0, 0, 0}, []byte{0, 80, 0, 0}), end: nlbCat(ip("169.254.169.255"), []byte{6, 0, 0, 0}, []byte{0, 90, 0, 0})}
	k, u := true, false
	key := func(a string, proto byte, port byte) []byte {
		return nlbCat(ip(a), []byte{proto, 0, 0, 0}, []byte{0, port, 0, 0})
	}
	for _, tt := range []struct {
		name  string
		set   *nlSet
		e     *nlElem
		key   []byte
		known []bool
		want  bool
	}{
		{"in every field", pipapo, e, key("169.254.169.254", 6, 85), []bool{k, k, k}, true},
		{"protocol differs", pipapo, e, key("169.254.169.254", 17, 85), []bool{k, k, k}, false},
		{"protocol unknown", pipapo, e, key("169.254.169.254", 17, 85), []bool{k, u, k}, true},
		{"port above", pipapo, e, key("169.254.169.254", 6, 91), []bool{k, k, k}, false},
		{"port unknown", pipapo, e, key("169.254.169.254", 6, 91), []bool{k, k, u}, true},
		{"address below", pipapo, e, key("169.254.168.1", 6, 85), []bool{k, k, k}, false},
		{"address unknown", pipapo, e, key("169.254.168.1", 6, 85), []bool{u, k, k}, true},
		{"address unknown, protocol differs", pipapo, e, key("169.254.169.254", 17, 85), []bool{u, k, k}, false},
		{"nothing known", pipapo, e, key("1.1.1.1", 1, 1), []bool{u, u, u}, true},
		{"fields past the key", &nlSet{keyLen: 8, interval: true, fields: []int{4, 4, 4}}, &nlElem{key: make([]byte, 8)}, make([]byte, 8), []bool{u, u}, false},
		{"a field past the known words", &nlSet{keyLen: 8, interval: true, fields: []int{4, 2}}, &nlElem{key: make([]byte, 8)}, make([]byte, 8), []bool{u}, false},
		{"a field just fitting", &nlSet{keyLen: 6, interval: true, fields: []int{4, 2}}, &nlElem{key: make([]byte, 6)}, make([]byte, 6), []bool{k, k}, true},
		{"a value without an end", &nlSet{keyLen: 4, interval: true, fields: []int{4}}, &nlElem{key: nlbIMDS4}, nlbIMDS4, []bool{k}, true},
		{"a value without an end, missed", &nlSet{keyLen: 4, interval: true, fields: []int{4}}, &nlElem{key: nlbIMDS4}, ip("169.254.169.253"), []bool{k}, false},
		{"one part", &nlSet{keyLen: 4, interval: true}, &nlElem{key: ip("169.254.0.0"), end: ip("169.254.255.255")}, nlbIMDS4, []bool{k}, true},
		{"one part, missed", &nlSet{keyLen: 4, interval: true}, &nlElem{key: ip("169.254.0.0"), end: ip("169.254.169.253")}, nlbIMDS4, []bool{k}, false},
		{"hash, last word short", &nlSet{keyLen: 6}, &nlElem{key: nlbCat(nlbIMDS4, []byte{0, 80})}, nlbCat(nlbIMDS4, []byte{0, 80}), []bool{k, k}, true},
		{"hash, last word differs", &nlSet{keyLen: 6}, &nlElem{key: nlbCat(nlbIMDS4, []byte{0, 81})}, nlbCat(nlbIMDS4, []byte{0, 80}), []bool{k, k}, false},
		{"hash, first word differs", &nlSet{keyLen: 6}, &nlElem{key: nlbCat(nlbOther4, []byte{0, 80})}, nlbCat(nlbIMDS4, []byte{0, 80}), []bool{k, k}, false},
	} {
		if got := tt.set.matches(tt.e, tt.key, tt.known); got != tt.want {
			t.Errorf("%s: matches = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestParseNlElem(t *testing.T) {
	key := nlValue(unix.NFTA_SET_ELEM_KEY, nlbIMDS4)
	for _, tt := range []struct {
		name    string
		a       []byte
		keyLen  int
		ok      bool
		end     []byte
		ivEnd   bool
		verdict int
		target  string
	}{
		{"a key", key, 4, true, nil, false, vContinue, ""},
		{"a key of another length", key, 16, false, nil, false, vContinue, ""},
		{"no key", be32(unix.NFTA_SET_ELEM_FLAGS, 0), 4, false, nil, false, vContinue, ""},
		{"an interval end", nlbCat(key, be32(unix.NFTA_SET_ELEM_FLAGS, unix.NFT_SET_ELEM_INTERVAL_END)), 4, true, nil, true, vContinue, ""},
		{"other flags", nlbCat(key, be32(unix.NFTA_SET_ELEM_FLAGS, 2)), 4, true, nil, false, vContinue, ""},
		{"a key end", nlbCat(key, nlValue(nftaSetElemKeyEnd, ip("169.254.169.255"))), 4, true, ip("169.254.169.255"), false, vContinue, ""},
		{"a key end of another length", nlbCat(key, nlValue(nftaSetElemKeyEnd, []byte{1})), 4, false, []byte{1}, false, vContinue, ""},
		{"a verdict", nlbCat(key, nlbVerdict(unix.NFTA_SET_ELEM_DATA, unix.NFT_GOTO, "svc")), 4, true, nil, false, vGoto, "svc"},
		{"a drop", nlbCat(key, nlbVerdict(unix.NFTA_SET_ELEM_DATA, nfDrop, "")), 4, true, nil, false, vDrop, ""},
		{"a verdict it does not follow", nlbCat(key, nlbVerdict(unix.NFTA_SET_ELEM_DATA, unix.NFT_BREAK, "")), 4, false, nil, false, 0, ""},
		{"data", nlbCat(key, nlValue(unix.NFTA_SET_ELEM_DATA, nlbOther4)), 4, true, nil, false, vContinue, ""},
	} {
		e, ok := parseNlElem(tt.a, tt.keyLen)
		if ok != tt.ok || ok && !bytes.Equal(e.key, nlbIMDS4) || !bytes.Equal(e.end, tt.end) || e.intervalEnd != tt.ivEnd || e.verdict != tt.verdict || e.target != tt.target {
			t.Errorf("%s: %+v, %v", tt.name, e, ok)
		}
	}
}

// TestRunRuleLookups runs lookups on sets and maps a kernel holds (in a network namespace
// of the test's own): hits and misses of known and partly known keys, inverted lookups,
// verdict maps and data maps, as runRule reads their descriptions and elements.
func TestRunRuleLookups(t *testing.T) {
	if !inNetns(t, "-test.run") {
		return
	}
	ruleset := `flush ruleset
table ip imdsmend-unit {
	set s { type ipv4_addr; elements = { 169.254.169.254, 10.0.0.1 } }
	set o { type ipv4_addr; elements = { 10.0.0.1 } }
	set empty { type ipv4_addr; }
	set iv { type ipv4_addr; flags interval; elements = { 10.0.0.0/8, 169.254.0.0/16 } }
	set ivo { type ipv4_addr; flags interval; elements = { 10.0.0.0/8, 169.254.169.255 } }
	set pair { type ipv4_addr . ipv4_addr; elements = { 10.0.0.5 . 169.254.169.254 } }
	set pairo { type ipv4_addr . ipv4_addr; elements = { 10.0.0.5 . 10.0.0.6 } }
	set pp { type ipv4_addr . inet_service; flags interval; elements = { 169.254.169.0/24 . 80-90 } }
	set ppo { type ipv4_addr . inet_service; flags interval; elements = { 169.254.169.0/24 . 81-90 } }
	set protos { type inet_proto; elements = { tcp, udp } }
	map vm { type ipv4_addr : verdict; elements = { 169.254.169.254 : jump other, 10.0.0.1 : drop } }
	map vmo { type ipv4_addr : verdict; elements = { 10.0.0.1 : drop } }
	map dm { type ipv4_addr : ipv4_addr; elements = { 169.254.169.254 : 10.0.0.2 } }
	chain other { }
}
`
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v: %s", err, out)
	}
	r1, r2 := uint32(unix.NFT_REG_1), uint32(unix.NFT_REG_2)
	saddr := xPayload(unix.NFT_PAYLOAD_NETWORK_HEADER, 12, 4, r1)
	inv := be32(unix.NFTA_LOOKUP_FLAGS, unix.NFT_LOOKUP_F_INV)
	toVerdict := be32(unix.NFTA_LOOKUP_DREG, unix.NFT_REG_VERDICT)
	pairKey := [][]byte{saddr, xPayload(unix.NFT_PAYLOAD_NETWORK_HEADER, 16, 4, unix.NFT_REG32_01)}
	addrPort := [][]byte{nlbDaddr4, xPayload(unix.NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, unix.NFT_REG32_01)}
	tests := []struct {
		name  string
		exprs [][]byte
		want  nlbWant
		vmap  []string // what a verdict map finds
	}{
		{"daddr @s", [][]byte{nlbDaddr4, nlbLookup("s", r1), nlbDrop}, nlbMatches, nil},
		{"daddr @o", [][]byte{nlbDaddr4, nlbLookup("o", r1), nlbDrop}, nlbNever, nil},
		{"daddr != @s", [][]byte{nlbDaddr4, nlbLookup("s", r1, inv), nlbDrop}, nlbNever, nil},
		{"daddr != @o", [][]byte{nlbDaddr4, nlbLookup("o", r1, inv), nlbDrop}, nlbMatches, nil},
		{"daddr @iv", [][]byte{nlbDaddr4, nlbLookup("iv", r1), nlbDrop}, nlbMatches, nil},
		{"daddr @ivo", [][]byte{nlbDaddr4, nlbLookup("ivo", r1), nlbDrop}, nlbNever, nil},
		{"saddr @s", [][]byte{saddr, nlbLookup("s", r1), nlbDrop}, nlbMaybe, nil},
		{"saddr != @s", [][]byte{saddr, nlbLookup("s", r1, inv), nlbDrop}, nlbMaybe, nil},
		{"saddr @empty", [][]byte{saddr, nlbLookup("empty", r1), nlbDrop}, nlbNever, nil},
		{"daddr @empty", [][]byte{nlbDaddr4, nlbLookup("empty", r1), nlbDrop}, nlbNever, nil},
		{"daddr != @empty", [][]byte{nlbDaddr4, nlbLookup("empty", r1, inv), nlbDrop}, nlbMatches, nil},
		{"daddr . dport @pair", append(addrPort, nlbLookup("pair", r1), nlbDrop), nlbNever, nil},
		{"saddr != @empty", [][]byte{saddr, nlbLookup("empty", r1, inv), nlbDrop}, nlbMatches, nil},
		{"saddr @iv", [][]byte{saddr, nlbLookup("iv", r1), nlbDrop}, nlbMaybe, nil},
		{"saddr . daddr @pair", append(pairKey, nlbLookup("pair", r1), nlbDrop), nlbMaybe, nil},
		{"saddr . daddr @pairo", append(pairKey, nlbLookup("pairo", r1), nlbDrop), nlbNever, nil},
		{"daddr . dport @pp", append(addrPort, nlbLookup("pp", r1), nlbDrop), nlbMatches, nil},
		{"daddr . dport @ppo", append(addrPort, nlbLookup("ppo", r1), nlbDrop), nlbNever, nil},
		{"l4proto @protos", [][]byte{xMeta(unix.NFT_META_L4PROTO, r1), nlbLookup("protos", r1), nlbDrop}, nlbMatches, nil},
		{"ttl @protos", [][]byte{xPayload(unix.NFT_PAYLOAD_NETWORK_HEADER, 8, 1, r1), nlbLookup("protos", r1), nlbDrop}, nlbMaybe, nil},
		{"daddr vmap @vm", [][]byte{nlbDaddr4, nlbLookup("vm", r1, toVerdict)}, nlbWant{ok: true, rule: true}, []string{"3 other certain=true"}},
		{"daddr vmap @vmo", [][]byte{nlbDaddr4, nlbLookup("vmo", r1, toVerdict)}, nlbWant{ok: true, rule: true}, nil},
		{"saddr vmap @vm", [][]byte{saddr, nlbLookup("vm", r1, toVerdict)}, nlbWant{ok: true, rule: true}, []string{"3 other certain=false", "5  certain=false"}},
		{"inverted vmap", [][]byte{nlbDaddr4, nlbLookup("vm", r1, toVerdict, inv)}, nlbFails, nil},
		{"daddr map @dm", [][]byte{nlbDaddr4, nlbLookup("dm", r1, be32(unix.NFTA_LOOKUP_DREG, r2)), nlbCmp(unix.NFT_CMP_EQ, r2, nlbIMDS4), nlbDrop}, nlbMaybe, nil},
		{"saddr map @dm", [][]byte{saddr, nlbLookup("dm", r1, be32(unix.NFTA_LOOKUP_DREG, r2)), nlbDrop}, nlbMatches, nil},
		{"daddr map @dm into no register", [][]byte{nlbDaddr4, nlbLookup("dm", r1, be32(unix.NFTA_LOOKUP_DREG, 99)), nlbDrop}, nlbFails, nil},
		{"inverted data map", [][]byte{nlbDaddr4, nlbLookup("dm", r1, be32(unix.NFTA_LOOKUP_DREG, r2), inv), nlbDrop}, nlbFails, nil},
		{"a set that is not there", [][]byte{nlbDaddr4, nlbLookup("gone", r1), nlbDrop}, nlbFails, nil},
		{"a key past the registers", [][]byte{xPayload(unix.NFT_PAYLOAD_NETWORK_HEADER, 16, 4, unix.NFT_REG32_15), nlbLookup("pair", unix.NFT_REG32_15), nlbDrop}, nlbFails, nil},
	}
	nt := &nftNetlinkTable{id: nftTableID{family: "ip", name: "imdsmend-unit"}, nfproto: unix.NFPROTO_IPV4,
		sets: &nlSets{m: map[string]*nlSet{}, read: readNlSet}}
	for _, tt := range tests {
		r, ok := nt.runRule(slices.Concat(tt.exprs...))
		nlbCheckRun(t, tt.name, r, ok, tt.want)
		if r == nil {
			continue
		}
		var found []string
		if r.vmap != nil {
			found = vmapFound(r.vmap(nil))
		}
		if (r.vmap != nil) != (tt.want.verdict == vContinue) || !slices.Equal(found, tt.vmap) {
			t.Errorf("%s: verdict map %v finds %q, want %q", tt.name, r.vmap != nil, found, tt.vmap)
		}
	}
}

// nlbVisit lists what eachAttr hands over: type and value.
type nlbVisit struct {
	typ uint16
	v   string
}

func TestEachAttrBounds(t *testing.T) {
	hdr := func(size, typ uint16) []byte {
		return binary.NativeEndian.AppendUint16(binary.NativeEndian.AppendUint16(nil, size), typ)
	}
	for _, tt := range []struct {
		name string
		b    []byte
		stop int // f returns false at this visit (0: never)
		want []nlbVisit
	}{
		{"padded values", nlbCat(nla(1, []byte("a")), nla(2, []byte("bcdef")), nla(3, nil)), 0, []nlbVisit{{1, "a"}, {2, "bcdef"}, {3, ""}}},
		{"flags cleared", nlbCat(nla(4|unix.NLA_F_NESTED, []byte("x")), nla(5|unix.NLA_F_NET_BYTEORDER, []byte("y"))), 0, []nlbVisit{{4, "x"}, {5, "y"}}},
		{"the last one unpadded", nlbCat(nla(1, []byte("abcd")), hdr(5, 2), []byte("z")), 0, []nlbVisit{{1, "abcd"}, {2, "z"}}},
		{"a size below the header", nlbCat(nla(1, []byte("abcd")), hdr(3, 2), []byte("zzzz")), 0, []nlbVisit{{1, "abcd"}}},
		{"a size past the end", nlbCat(nla(1, []byte("abcd")), hdr(9, 2), []byte("zzzz")), 0, []nlbVisit{{1, "abcd"}}},
		{"a size at the end", nlbCat(nla(1, []byte("abcd")), hdr(8, 2), []byte("zzzz")), 0, []nlbVisit{{1, "abcd"}, {2, "zzzz"}}},
		{"a short header", nlbCat(nla(1, []byte("abcd")), []byte{8, 0, 2}), 0, []nlbVisit{{1, "abcd"}}},
		{"the padding cut", nlbCat(nla(1, []byte("abcd")), hdr(6, 2), []byte("zz"), hdr(4, 3)), 0, []nlbVisit{{1, "abcd"}, {2, "zz"}}},
		{"stopped", nlbCat(nla(1, nil), nla(2, nil), nla(3, nil)), 2, []nlbVisit{{1, ""}, {2, ""}}},
		{"nothing", nil, 0, nil},
	} {
		var got []nlbVisit
		eachAttr(tt.b, func(typ uint16, v []byte) bool {
			got = append(got, nlbVisit{typ, string(v)})
			return len(got) != tt.stop
		})
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	b := nlbCat(nla(1, []byte("a")), nla(2, []byte("b")), nla(2, []byte("c")))
	if got := string(attr(b, 2)); got != "b" {
		t.Errorf("attr(2) = %q, want the first", got)
	}
	if got := attr(b, 3); got != nil {
		t.Errorf("attr(3) = %q, want nil", got)
	}
	for _, tt := range []struct {
		v    []byte
		want uint32
		ok   bool
	}{{[]byte{0, 0, 1, 2}, 0x102, true}, {[]byte{0, 1, 2}, 0, false}, {[]byte{0, 0, 0, 1, 2}, 0, false}, {nil, 0, false}} {
		if got, ok := beUint32(tt.v); got != tt.want || ok != tt.ok {
			t.Errorf("beUint32(%x) = %d, %v", tt.v, got, ok)
		}
	}
	var names []string
	eachExpr(nlbCat(xExpr("a"), xExpr("b"), xExpr("c")), func(name, _ []byte) bool {
		names = append(names, string(name))
		return len(names) < 2
	})
	if !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("eachExpr went on after false: %q", names)
	}
}

// TestChainSourceReadsOrFallsBack: an iptables-nft chain is read over netlink when every rule of it
// decodes, leaving out the rules whose destination leaves IMDS out and numbering the rest;
// a rule that does not decode, or a dump that fails, sends the whole chain to the text
// reader; a chain neither can read marks the walk incomplete.
func TestChainSourceReadsOrFallsBack(t *testing.T) {
	r1 := uint32(unix.NFT_REG_1)
	daddr6 := func(a []byte) []byte {
		return nlbCat(nlbDaddr6, nlbCmp(unix.NFT_CMP_EQ, r1, a), xExpr("counter"), nlbDrop)
	}
	chains := map[string][][]byte{
		"KUBE":  {nlbCat(nlbDaddr4, nlbEqOther4, xExpr("counter"), xVerdict(unix.NFT_JUMP, "SVC")), nlbCat(nlbDaddr4, nlbEqIMDS4, xExpr("counter"), nlbDrop), nlbCat(xExpr("counter"), xVerdict(nfAccept, ""))},
		"MIXED": {nlbCat(xExpr("counter"), nlbDrop), xExpr("socket"), nlbCat(xExpr("counter"), nlbDrop)},
		"LAST":  {nlbCat(xExpr("counter"), nlbDrop), xExpr("socket")},
		"SIX":   {daddr6(make([]byte, 16)), daddr6(nlbIMDS6)},
	}
	rules := func(_ uint8, table, chain string, f func([]byte)) error {
		if table != "filter" {
			t.Errorf("dumped table %q", table)
		}
		exprs, ok := chains[chain]
		if !ok {
			return unix.EPERM
		}
		for _, e := range exprs {
			f(e)
		}
		return nil
	}
	// The text reader: one REJECT rule, or a failure for chain BROKEN.
	bin := filepath.Join(t.TempDir(), "iptables-nft")
	script := "#!/bin/sh\n[ \"$4\" = BROKEN ] && exit 1\necho \"-N $4\"\necho \"-A $4 -j REJECT\"\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		chain    string
		nfproto  uint8
		verdicts []int // of the rules read, in order
		text     bool  // read as text
	}{
		{"KUBE", unix.NFPROTO_IPV4, []int{vDrop, vAccept}, false},
		{"MIXED", unix.NFPROTO_IPV4, []int{vReject}, true},
		{"LAST", unix.NFPROTO_IPV4, []int{vReject}, true},
		{"GONE", unix.NFPROTO_IPV4, []int{vReject}, true},
		{"SIX", unix.NFPROTO_IPV6, []int{vDrop}, false},
		{"BROKEN", unix.NFPROTO_IPV4, nil, true},
	} {
		family := "ipv4"
		if tt.nfproto == unix.NFPROTO_IPV6 {
			family = "ipv6"
		}
		tbl := &fwTable{backend: "nft", family: family, name: "filter", chains: map[string]*fwChain{}}
		s := &chainSource{ctx: context.Background(), t: tbl, table: "filter", nfproto: tt.nfproto, bin: bin, users: testUsers, bases: map[string]bool{}, rules: rules}
		c := s.loadUser(tt.chain)
		if tt.verdicts == nil {
			if c != nil || !tbl.loadFailed {
				t.Errorf("%s: read %+v, loadFailed %v; want a failed load", tt.chain, c, tbl.loadFailed)
			}
			continue
		}
		if c == nil || tbl.loadFailed || c.name != tt.chain {
			t.Fatalf("%s: read %+v, loadFailed %v", tt.chain, c, tbl.loadFailed)
		}
		var verdicts []int
		for i, r := range c.rules {
			verdicts = append(verdicts, r.verdict)
			if r.chain != c || r.pos != i+1 || (r.spec != "") != tt.text {
				t.Errorf("%s: rule %d: chain %p pos %d spec %q", tt.chain, i, r.chain, r.pos, r.spec)
			}
		}
		if !slices.Equal(verdicts, tt.verdicts) {
			t.Errorf("%s: verdicts %v, want %v", tt.chain, verdicts, tt.verdicts)
		}
	}
}

// TestNewChainSourceBases: the base chains of the table (INPUT among them) are noted with
// their policies; one iptables does not make means native rules, read otherwise.
func TestNewChainSourceBases(t *testing.T) {
	id, other := nftTableID{"ip", "filter"}, nftTableID{"ip", "nat"}
	bases := []nftChainID{{table: id, name: "OUTPUT", drop: true}, {table: id, name: "INPUT"}, {table: id, name: "FORWARD"}, {table: other, name: "weird"}}
	tbl := &fwTable{backend: "nft", family: "ipv4", name: "filter", chains: map[string]*fwChain{}}
	s := newChainSource(context.Background(), tbl, id, bases, unix.NFPROTO_IPV4, "iptables-nft", testUsers)
	if s == nil || tbl.load == nil || s.table != "filter" || s.nfproto != unix.NFPROTO_IPV4 {
		t.Fatalf("newChainSource = %+v", s)
	}
	if want := map[string]bool{"OUTPUT": true, "INPUT": false, "FORWARD": false}; !maps.Equal(s.bases, want) {
		t.Errorf("bases %v, want %v", s.bases, want)
	}
	for _, name := range []string{"weird", "PREROUTING"} {
		tbl := &fwTable{backend: "nft", family: "ipv4", name: "filter", chains: map[string]*fwChain{}}
		if s := newChainSource(context.Background(), tbl, id, append(bases, nftChainID{table: id, name: name}), unix.NFPROTO_IPV4, "iptables-nft", testUsers); s != nil {
			t.Errorf("a base chain %s in filter: a source", name)
		}
	}
}

// TestReadNativeTablesSkips: tables of families without IP traffic and iptables-nft's own
// tables are left out; an inet table gives a walk per family, with the set cache shared;
// base chains off IMDS's path are not read.
func TestReadNativeTablesSkips(t *testing.T) {
	none := "imdsmend-unit-none"
	tables := []nftTableID{{"ip", "filter"}, {"ip6", "nat"}, {"ip", "mangle"}, {"arp", none}, {"bridge", none}, {"netdev", none},
		{"inet", "filter"}, {"ip", none}, {"ip6", none}}
	bases := []nftChainID{{table: nftTableID{"inet", "filter"}, name: "in", hook: "input"}, {table: nftTableID{"ip", none}, name: "ing", hook: "ingress"}}
	out, ok := readNativeTables(tables, bases)
	if !ok {
		t.Fatal("readNativeTables failed")
	}
	var got []string
	for _, tbl := range out {
		got = append(got, tbl.family+" "+tbl.name)
		if tbl.backend != "nftables" || len(tbl.chains) != 0 || len(tbl.order) != 0 || tbl.load == nil {
			t.Errorf("%s %s: %+v", tbl.family, tbl.name, tbl)
		}
	}
	if want := []string{"ipv4 inet filter", "ipv6 inet filter", "ipv4 ip " + none, "ipv6 ip6 " + none}; !slices.Equal(got, want) {
		t.Errorf("tables %q, want %q", got, want)
	}
}

// TestReadChainsNativeSources: each native table read is named once among the sources,
// an inet table's two walks too.
func TestReadChainsNativeSources(t *testing.T) {
	if !inNetns(t, "-test.run") {
		return
	}
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(`flush ruleset
table inet f {
	chain out { type filter hook output priority 0; ip daddr 10.0.0.0/8 drop; }
}
table ip k {
	chain out { type nat hook output priority -100; }
}
`)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v: %s", err, out)
	}
	fw, ok := readChains(context.Background(), testUsers, ec2Packets)
	if !ok {
		t.Fatal("readChains did not answer")
	}
	if want := []string{"nftables inet f", "nftables ip k"}; !slices.Equal(fw.Sources, want) {
		t.Errorf("sources %q, want %q", fw.Sources, want)
	}
}
