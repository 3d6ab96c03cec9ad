package firewall

import (
	"strings"
	"testing"
)

// FuzzParseRestoreFile: any text; every rule found lies on the line it names.
func FuzzParseRestoreFile(f *testing.F) {
	f.Add(rulesV4)
	f.Add(ufwUserRules)
	f.Add("*filter\n-I OUTPUT 1 -d 1.2.3.4 ! --dport ! 80 -j DROP\n-A OUTPUT -d 1.2.3.4/255.255.0.0 -j REJECT\n")
	f.Fuzz(func(t *testing.T, data string) {
		lines := strings.SplitAfter(data, "\n")
		for _, r := range parseRestoreFile([]byte(data), false, testUsers) {
			if r.line < 1 || r.line > len(lines) || data[r.start:r.end] != lines[r.line-1] {
				t.Fatalf("rule %+v does not lie on its line", r)
			}
		}
	})
}

// FuzzParseNftConf: any text; every rule names a line of the text.
func FuzzParseNftConf(f *testing.F) {
	f.Add("table inet filter {\n chain output { type filter hook output priority 0; policy drop;\n ip daddr { 1.2.3.4, 5.6.7.8 } drop\n }\n}\nadd rule ip t c drop\n")
	f.Add("insert rule inet t c tcp dport { 80 } \\\n drop # x\n")
	f.Fuzz(func(t *testing.T, data string) {
		n := strings.Count(data, "\n") + 1
		for _, r := range parseNftConf([]byte(data)) {
			if r.line < 0 || r.line >= n {
				t.Fatalf("rule %+v outside the text's %d lines", r, n)
			}
		}
	})
}

// FuzzParseDirectXML: any text; no panic, lines positive.
func FuzzParseDirectXML(f *testing.F) {
	f.Add(directXML)
	f.Fuzz(func(t *testing.T, data string) {
		for _, r := range parseDirectXML([]byte(data), testUsers) {
			if r.line < 1 {
				t.Fatalf("rule %+v without a line", r)
			}
		}
	})
}
