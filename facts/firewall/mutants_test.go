package firewall

// Tests that pin what mutation testing (tests/mutate, docs/testing.md) showed no other
// test did: boundaries and branches of the firewall reading and evaluation.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imdsmend/imdsmend/facts/route"
	"github.com/imdsmend/imdsmend/internal/paths"
)

// TestFirewallTraversalBoundaries evaluates handwritten iptables rulesets at the edges of
// what the evaluator decides.
func TestFirewallTraversalBoundaries(t *testing.T) {
	// chainOf returns a ruleset whose DROP sits n jumps below OUTPUT.
	chainOf := func(n int) string {
		var b strings.Builder
		b.WriteString("\n:OUTPUT ACCEPT [0:0]")
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&b, "\n:C%d - [0:0]", i)
		}
		b.WriteString("\n-A OUTPUT -d 169.254.169.254/32 -j C1")
		for i := 1; i < n; i++ {
			fmt.Fprintf(&b, "\n-A C%d -j C%d", i, i+1)
		}
		fmt.Fprintf(&b, "\n-A C%d -p tcp -j DROP", n)
		return b.String()
	}
	tests := []struct {
		name  string
		rules string
		want  []string
	}{
		{"a drop exactly maxDepth jumps deep is evaluated", chainOf(maxDepth),
			[]string{fmt.Sprintf("nft/ipv4/filter/C%d#1 drop everyone blocks certain | -p tcp -j DROP", maxDepth)}},
		{"an iprange ending at IMDS holds it", `
:OUTPUT ACCEPT [0:0]
-A OUTPUT -m iprange --dst-range 169.254.169.250-169.254.169.254 -j DROP`,
			[]string{"nft/ipv4/filter/OUTPUT#1 drop everyone blocks certain | -m iprange --dst-range 169.254.169.250-169.254.169.254 -j DROP"}},
		{"an iprange starting at IMDS holds it", `
:OUTPUT ACCEPT [0:0]
-A OUTPUT -m iprange --dst-range 169.254.169.254-169.254.169.255 -j DROP`,
			[]string{"nft/ipv4/filter/OUTPUT#1 drop everyone blocks certain | -m iprange --dst-range 169.254.169.254-169.254.169.255 -j DROP"}},
		{"a negated iprange around IMDS is broad", `
:OUTPUT ACCEPT [0:0]
-A OUTPUT -m iprange ! --dst-range 10.0.0.0-10.0.0.255 -j DROP`,
			[]string{"nft/ipv4/filter/OUTPUT#1 drop everyone blocks certain broad | -m iprange ! --dst-range 10.0.0.0-10.0.0.255 -j DROP"}},
		{"-d 168.0.0.0/7 is broad", `
:OUTPUT ACCEPT [0:0]
-A OUTPUT -d 168.0.0.0/7 -j DROP`, []string{"nft/ipv4/filter/OUTPUT#1 drop everyone blocks certain broad | -d 168.0.0.0/7 -j DROP"}},
		{"owner-scoped nothing: --uid-owner on the drop is deliberate", `
:OUTPUT ACCEPT [0:0]
-A OUTPUT -d 169.254.169.254/32 -m owner ! --uid-owner 0 -j DROP`,
			[]string{"nft/ipv4/filter/OUTPUT#1 drop non_root certain deliberate | -d 169.254.169.254/32 -m owner ! --uid-owner 0 -j DROP"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			save := "*filter" + tt.rules + "\nCOMMIT\n"
			got := summaries(t, &sourceText{saves: []saveText{{"nft", "ipv4", save}}}, Config{}, ec2Packets)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
		})
	}
}

// nftRuleset is an inet table "t" with an output chain "out" holding one rule per expr.
func nftRuleset(exprs ...string) []byte {
	var b strings.Builder
	b.WriteString(`{"nftables": [{"table": {"family": "inet", "name": "t", "handle": 1}},
{"chain": {"family": "inet", "table": "t", "name": "out", "handle": 1, "type": "filter", "hook": "output", "prio": 0, "policy": "accept"}}`)
	for i, e := range exprs {
		fmt.Fprintf(&b, `,
{"rule": {"family": "inet", "table": "t", "chain": "out", "handle": %d, "expr": %s}}`, i+2, e)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

func TestNftRulesetBoundaries(t *testing.T) {
	tests := []struct {
		name string
		expr string
		want []string
	}{
		{"ip daddr 169.0.0.0/8 is narrow", `[{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": {"prefix": {"addr": "169.0.0.0", "len": 8}}}}, {"drop": null}]`,
			[]string{"nftables/ipv4/inet t/out#1 drop everyone blocks certain | ip daddr 169.0.0.0/8 drop"}},
		{"ip daddr 168.0.0.0/7 is broad", `[{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": {"prefix": {"addr": "168.0.0.0", "len": 7}}}}, {"drop": null}]`,
			[]string{"nftables/ipv4/inet t/out#1 drop everyone blocks certain broad | ip daddr 168.0.0.0/7 drop"}},
		// Every uid: the scope is everyone, so only the owner match makes it deliberate.
		{"meta skuid makes a drop deliberate", `[{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "169.254.169.254"}}, {"match": {"op": "==", "left": {"meta": {"key": "skuid"}}, "right": {"range": [0, 4294967294]}}}, {"drop": null}]`,
			[]string{"nftables/ipv4/inet t/out#1 drop everyone blocks certain deliberate | ip daddr 169.254.169.254 meta skuid 0-4294967294 drop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summaries(t, &sourceText{nft: nftRuleset(tt.expr)}, Config{}, ec2Packets)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
		})
	}
}

// An inet table is evaluated for both families but is one source.
func TestNftSourceListedOnce(t *testing.T) {
	fw, err := evaluateFirewall(&sourceText{nft: nftRuleset()}, Config{}, testUsers, ec2Packets)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"nftables inet t"}, fw.Sources); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
}

func TestNftConditionBoundaries(t *testing.T) {
	tests := []struct {
		name                  string
		expr                  string
		root, user, forwarded outcome
	}{
		{"tcp sport 0-65535 is every port", `[{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"sport"}},"right":{"range":[0,65535]}}},{"drop":null}]`, all, all, all},
		{"tcp sport 1-65535 is every port", `[{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"sport"}},"right":{"range":[1,65535]}}},{"drop":null}]`, all, all, all},
		{"tcp sport 1-1023 is not", `[{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"sport"}},"right":{"range":[1,1023]}}},{"drop":null}]`, unknown, unknown, unknown},
		{"tcp sport 2-65535 is not", `[{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"sport"}},"right":{"range":[2,65535]}}},{"drop":null}]`, unknown, unknown, unknown},
		{"tcp sport 1-65534 is not", `[{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"sport"}},"right":{"range":[1,65534]}}},{"drop":null}]`, unknown, unknown, unknown},
		{"meta l4proto 6 is tcp", `[{"match":{"op":"==","left":{"meta":{"key":"l4proto"}},"right":6}},{"drop":null}]`, all, all, all},
		{"meta l4proto 7 is not", `[{"match":{"op":"==","left":{"meta":{"key":"l4proto"}},"right":7}},{"drop":null}]`, none, none, none},
		{"ip protocol 6 is tcp", `[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"protocol"}},"right":6}},{"drop":null}]`, all, all, all},
		{"ip protocol 7 is not", `[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"protocol"}},"right":7}},{"drop":null}]`, none, none, none},
		{"ip dscp is not modelled", `[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"dscp"}},"right":"cs0"}},{"drop":null}]`, unknown, unknown, unknown},
		{"a statement of two keys is not modelled", `[{"counter":null,"log":null},{"drop":null}]`, unknown, unknown, unknown},
		{"a range from a name is not a range from 0", `[{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"sport"}},"right":{"range":["x",65535]}}},{"drop":null}]`, unknown, unknown, unknown},
		{"ip daddr < 0.0.0.0 is nothing", `[{"match":{"op":"<","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"0.0.0.0"}},{"drop":null}]`, none, none, none},
		{"tcp dport < 0 is nothing", `[{"match":{"op":"<","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":0}},{"drop":null}]`, none, none, none},
		{"tcp dport < 81 holds 80", `[{"match":{"op":"<","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":81}},{"drop":null}]`, all, all, all},
		{"tcp dport > 80 misses 80", `[{"match":{"op":">","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":80}},{"drop":null}]`, none, none, none},
		{"tcp dport a negative number is not port 0", `[{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":{"set":[-80,"http"]}}},{"drop":null}]`, none, none, none},
		{"a range above IMDS misses it", `[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":{"range":["169.254.169.255","169.254.170.0"]}}},{"drop":null}]`, none, none, none},
		{"a range below IMDS misses it", `[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":{"range":["169.254.169.0","169.254.169.253"]}}},{"drop":null}]`, none, none, none},
		{"a range ending at IMDS holds it", `[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":{"range":["169.254.169.0","169.254.169.254"]}}},{"drop":null}]`, all, all, all},
		{"a range starting at IMDS holds it", `[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":{"range":["169.254.169.254","169.254.169.254"]}}},{"drop":null}]`, all, all, all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var exprs []any
			if err := json.Unmarshal([]byte(tt.expr), &exprs); err != nil {
				t.Fatal(err)
			}
			checkOutcomes(t, parseNftRule(exprs, "", testUsers, nil).rule, "ipv4", tt.root, tt.user, tt.forwarded)
		})
	}
}

// An ordered comparison of an address reaches the family's last address.
func TestNftOrderedRangeEnds(t *testing.T) {
	tests := []struct {
		op, v  string
		lo, hi string
	}{
		{">=", "10.0.0.1", "10.0.0.1", "255.255.255.255"},
		{">", "10.0.0.1", "10.0.0.2", "255.255.255.255"},
		{"<", "10.0.0.1", "0.0.0.0", "10.0.0.0"},
		{">=", "fd00::1", "fd00::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
	}
	for _, tt := range tests {
		got, ok := orderedRange(tt.op, tt.v)
		want := map[string]any{"range": []any{tt.lo, tt.hi}}
		if !ok || !cmp.Equal(got, want) {
			t.Errorf("orderedRange(%s %s) = %v, %v; want %v", tt.op, tt.v, got, ok, want)
		}
	}
}

// A saved line longer than bufio's default 64 KiB (a long comment) is read.
func TestParseSaveLongLine(t *testing.T) {
	comment := strings.Repeat("x", 100*1024)
	save := "*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -d 169.254.169.254/32 -m comment --comment " + comment + " -j DROP\nCOMMIT\n"
	st, err := parseSave(save, "nft", "ipv4", testUsers)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.tables) != 1 || len(st.tables[0].chains["OUTPUT"].rules) != 1 {
		t.Fatalf("tables %+v", st.tables)
	}
}

func TestSplitWordsBackslashAtEnd(t *testing.T) {
	if got, err := SplitWords(`x\y`); err != nil || !cmp.Equal(got, []string{"xy"}) {
		t.Errorf(`SplitWords(x\y) = %q, %v`, got, err)
	}
	if got, err := SplitWords(`"a\"`); err == nil {
		t.Errorf(`SplitWords("a\") = %q, want an unterminated quote`, got)
	}
}

func TestQuoteWordBounds(t *testing.T) {
	for _, w := range []string{"A", "Z", "a", "z", "0", "9", "AZaz09"} {
		if got := QuoteWords([]string{w}); got != w {
			t.Errorf("QuoteWords(%q) = %q, want it unquoted", w, got)
		}
	}
	for _, w := range []string{"@[", "`", "{", "/:", "a b"} {
		if got := quoteWord(w); got == w && strings.ContainsAny(w, "[`{ ") {
			t.Errorf("quoteWord(%q) left it unquoted", w)
		}
	}
}

// User and group names resolve from their own files, as decimal ids.
func TestUserDBNames(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"passwd": "svc:x:48:48::/:/bin/false\n", "group": "svc:x:1000:\n"} {
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db := newUserDB(paths.New(root))
	for _, tt := range []struct {
		uid  bool
		want uint32
	}{{true, 48}, {false, 1000}} {
		lo, hi, ok := db.idRange("svc", tt.uid)
		if !ok || lo != tt.want || hi != tt.want {
			t.Errorf("idRange(svc, uid=%v) = %d, %d, %v; want %d", tt.uid, lo, hi, ok, tt.want)
		}
	}
}

func TestRunToolFails(t *testing.T) {
	if _, err := runTool(context.Background(), "false"); err == nil {
		t.Error("runTool(false) succeeded")
	}
}

// IMDS traffic is TCP port 80, to the family's IMDS address.
func TestRoutePackets(t *testing.T) {
	ps := routePackets()
	for fam, v6 := range map[string]bool{"ipv4": false, "ipv6": true} {
		p := ps[fam]
		if p.v6 != v6 || p.dst != route.IMDSAddr(v6) || p.port != 80 {
			t.Errorf("%s packet %+v", fam, p)
		}
	}
}
