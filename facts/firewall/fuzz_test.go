package firewall

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FuzzParseSave feeds arbitrary text to the iptables-save parser and evaluates whatever
// it accepts: neither may panic or loop.
func FuzzParseSave(f *testing.F) {
	files, _ := filepath.Glob("testdata/firewall/*.save")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Add("*filter\n:OUTPUT ACCEPT [0:0]\n:C - [0:0]\n-A OUTPUT -j C\n-A C -j OUTPUT\nCOMMIT\n")
	f.Fuzz(func(t *testing.T, out string) {
		src := &sourceText{saves: []saveText{{"nft", "ipv4", out}}}
		fw, err := evaluateFirewall(src, Config{}, testUsers, ec2Packets)
		if err != nil {
			return
		}
		for _, r := range fw.Rules {
			if r.Spec == "" && r.Position != 0 {
				t.Errorf("rule without spec: %+v", r)
			}
		}
	})
}

// FuzzParseNftRuleset does the same for nft's JSON.
func FuzzParseNftRuleset(f *testing.F) {
	files, _ := filepath.Glob("testdata/firewall/*.nft.json")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &sourceText{nft: data}
		_, _ = evaluateFirewall(src, Config{IPv6: true}, testUsers, nsPackets)
	})
}

// FuzzDecodeXtRule feeds arbitrary bytes to the netlink rule decoder as a rule's expression
// list, for either family: it may not panic, and what it decodes has a known verdict.
func FuzzDecodeXtRule(f *testing.F) {
	for _, c := range xtUnitCases {
		f.Add(c.v6, slices.Concat(c.exprs...))
	}
	f.Fuzz(func(t *testing.T, v6 bool, exprs []byte) {
		checkDecodeSane(t, v6, exprs)
	})
}

// FuzzEachAttr walks arbitrary bytes as netlink attributes: the walk may not panic, and
// each value it yields lies inside the input, after the previous one.
func FuzzEachAttr(f *testing.F) {
	for _, c := range xtUnitCases {
		f.Add(slices.Concat(c.exprs...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		next := start
		eachAttr(b, func(typ uint16, v []byte) bool {
			at := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
			if at < next+unix.SizeofNlAttr || at+uintptr(len(v)) > start+uintptr(len(b)) {
				t.Fatalf("value at %d+%d outside the input of %d after %d", at-start, len(v), len(b), next-start)
			}
			if typ&(unix.NLA_F_NESTED|unix.NLA_F_NET_BYTEORDER) != 0 {
				t.Fatalf("type %#x keeps its flags", typ)
			}
			next = at + uintptr(len(v))
			return true
		})
	})
}
