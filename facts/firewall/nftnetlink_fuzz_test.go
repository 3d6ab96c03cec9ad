package firewall

import (
	"bytes"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzRunNftRule runs arbitrary bytes as a native rule's expression list, as the chain
// walk runs what the kernel dumps, for ip, ip6 and inet tables (both walks of inet). It
// must not panic, and a rule it runs must be one the walk can evaluate: a known verdict,
// a jump with its target, conditions whose outcomes are outcomes. Sets read as missing:
// runRule reads a set's elements from the kernel (set.elements), which a fuzz run must
// not depend on, so every lookup fails and the walk leaves the rule to the full read.
func FuzzRunNftRule(f *testing.F) {
	r1 := uint32(unix.NFT_REG_1)
	for _, exprs := range [][][]byte{
		{nlbDaddr4, nlbEqIMDS4, nlbDrop},
		{nlbDaddr4, xBitwise(r1, r1, []byte{255, 255, 0, 0}, make([]byte, 4)), nlbCmp(unix.NFT_CMP_EQ, r1, []byte{169, 254, 0, 0}), xVerdict(unix.NFT_JUMP, "svc")},
		{nlbDaddr6, nlbCmp(unix.NFT_CMP_EQ, r1, nlbIMDS6), nlbDport, nlbRange(unix.NFT_RANGE_EQ, r1, []byte{0, 1}, []byte{4, 0}), xExpr("reject")},
		{xMeta(unix.NFT_META_NFPROTO, r1), nlbCmp(unix.NFT_CMP_EQ, r1, []byte{unix.NFPROTO_IPV6}), xMeta(unix.NFT_META_MARK, r1), nlbCmp(unix.NFT_CMP_NEQ, r1, make([]byte, 4)), xVerdict(unix.NFT_GOTO, "x")},
		{xExpr("ct", be32(unix.NFTA_CT_DREG, r1), be32(unix.NFTA_CT_KEY, unix.NFT_CT_STATE)), xExpr("counter"), xExpr("limit"), xExpr("queue")},
		{nlbDaddr4, nlbLookup("s", r1), xExpr("nat", be32(unix.NFTA_NAT_TYPE, unix.NFT_NAT_DNAT))},
		{nlbDaddr4, xPayload(unix.NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, unix.NFT_REG32_01), nlbLookup("m", r1, be32(unix.NFTA_LOOKUP_DREG, unix.NFT_REG_VERDICT))},
		{nlbImmData(unix.NFT_REG_2, nlbIMDS4), nlbCmp(unix.NFT_CMP_GTE, unix.NFT_REG_2, nlbOther4), xExpr("objref", be32(unix.NFTA_OBJREF_IMM_TYPE, nftaObjrefTypeCounter)), xVerdict(unix.NFT_RETURN, "")},
		{xExpr("redir"), xExpr("socket")},
	} {
		for fam := range uint8(3) {
			f.Add(fam, slices.Concat(exprs...))
		}
	}
	f.Fuzz(func(t *testing.T, fam uint8, exprs []byte) {
		family := []string{"ip", "ip6", "inet"}[fam%3]
		for _, v6 := range []bool{false, true} {
			if family == "ip" && v6 || family == "ip6" && !v6 {
				continue
			}
			nt := nlbTable(family, v6, nil, nil)
			r, ok := nt.runRule(exprs)
			if !ok && r != nil {
				t.Fatalf("%s v6=%v: a rule that can't be run: %+v", family, v6, r)
			}
			if r == nil {
				continue
			}
			if r.verdict < vContinue || r.verdict > vQueue {
				t.Errorf("%s v6=%v: verdict %d", family, v6, r.verdict)
			}
			if (r.verdict == vJump || r.verdict == vGoto) && r.target == "" {
				t.Errorf("%s v6=%v: a jump to no chain", family, v6)
			}
			if r.vmap != nil {
				t.Errorf("%s v6=%v: a verdict map with no set", family, v6)
			}
			for _, p := range xtProbePackets(v6) {
				for _, c := range r.conds {
					if o := c(&p); o > all {
						t.Errorf("%s v6=%v: outcome %d", family, v6, o)
					}
				}
			}
		}
	})
}

// FuzzParseNlElem reads arbitrary bytes as one element of a set's dump, for keys of one
// address, of an address, a protocol and a port, and of an IPv6 address. An element it
// accepts has a key (and end) of the set's length and is found by its own key in a hash
// set; finding it in sets of any kind must not panic.
func FuzzParseNlElem(f *testing.F) {
	key := nlValue(unix.NFTA_SET_ELEM_KEY, nlbIMDS4)
	f.Add(uint8(0), key)
	f.Add(uint8(0), nlbCat(key, be32(unix.NFTA_SET_ELEM_FLAGS, unix.NFT_SET_ELEM_INTERVAL_END)))
	f.Add(uint8(0), nlbCat(key, nlValue(nftaSetElemKeyEnd, nlbOther4), nlbVerdict(unix.NFTA_SET_ELEM_DATA, unix.NFT_GOTO, "svc")))
	f.Add(uint8(1), nlbCat(nlValue(unix.NFTA_SET_ELEM_KEY, nlbCat(nlbIMDS4, []byte{6, 0, 0, 0, 0, 80, 0, 0})), nlbVerdict(unix.NFTA_SET_ELEM_DATA, nfDrop, "")))
	f.Add(uint8(2), nlbCat(nlValue(unix.NFTA_SET_ELEM_KEY, nlbIMDS6), nlValue(unix.NFTA_SET_ELEM_DATA, nlbIMDS6)))
	f.Fuzz(func(t *testing.T, kind uint8, a []byte) {
		keyLen, fields := []int{4, 12, 16}[kind%3], [][]int{{4}, {4, 1, 2}, {16}}[kind%3]
		e, ok := parseNlElem(a, keyLen)
		if !ok {
			return
		}
		if len(e.key) != keyLen || e.end != nil && len(e.end) != keyLen {
			t.Fatalf("key %x end %x for keys of %d bytes", e.key, e.end, keyLen)
		}
		if (e.verdict == vJump || e.verdict == vGoto) && e.target == "" {
			t.Errorf("a jump to no chain")
		}
		words := (keyLen + 3) / 4
		known := slices.Repeat([]bool{true}, words)
		hits, o, ok := (&nlSet{keyLen: keyLen}).find(nlbSource(e), e.key, known)
		if found := len(hits) == 1 && bytes.Equal(hits[0].key, e.key); !ok || o != all || found == e.intervalEnd {
			t.Errorf("a hash set of %+v finds %+v by its key", e, hits)
		}
		for _, s := range []*nlSet{{keyLen: keyLen, interval: true}, {keyLen: keyLen, interval: true, fields: fields}} {
			for _, k := range [][]bool{known, make([]bool, words)} {
				s.find(nlbSource(e), e.key, k)
				if e.end != nil {
					s.find(nlbSource(e), e.end, k)
				}
			}
		}
	})
}
