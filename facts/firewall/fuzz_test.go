package firewall

import (
	"os"
	"path/filepath"
	"testing"
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
