package firewall

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNftRuleConditions(t *testing.T) {
	tests := []struct {
		name                  string
		expr                  string
		v6                    bool
		root, user, forwarded outcome
		text                  string
	}{
		{"daddr", `[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"169.254.169.254"}},{"drop":null}]`, false,
			all, all, all, "ip daddr 169.254.169.254 drop"},
		{"daddr not on an IPv6 packet", `[{"match":{"op":"!=","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"10.0.0.1"}},{"drop":null}]`, true,
			none, none, none, "ip daddr != 10.0.0.1 drop"},
		{"udp port not", `[{"match":{"op":"!=","left":{"payload":{"protocol":"udp","field":"dport"}},"right":53}},{"drop":null}]`, false,
			none, none, none, "udp dport != 53 drop"},
		{"daddr on an IPv6 packet", `[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"169.254.169.254"}},{"drop":null}]`, true,
			none, none, none, "ip daddr 169.254.169.254 drop"},
		{"daddr not", `[{"match":{"op":"!=","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":{"prefix":{"addr":"169.254.0.0","len":16}}}},{"drop":null}]`, false,
			none, none, none, "ip daddr != 169.254.0.0/16 drop"},
		{"daddr range set", `[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":{"set":["10.0.0.1",{"range":["169.254.169.250","169.254.169.255"]}]}}},{"reject":null}]`, false,
			all, all, all, "ip daddr { 10.0.0.1, 169.254.169.250-169.254.169.255 } reject"},
		{"named set", `[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"@blocked"}},{"drop":null}]`, false,
			unknown, unknown, unknown, "ip daddr @blocked drop"},
		{"tcp dport set", `[{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":{"set":[80,443]}}},{"drop":null}]`, false,
			all, all, all, "tcp dport { 80, 443 } drop"},
		{"tcp dport range miss", `[{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":{"range":[81,1024]}}},{"drop":null}]`, false,
			none, none, none, "tcp dport 81-1024 drop"},
		{"udp", `[{"match":{"op":"==","left":{"payload":{"protocol":"udp","field":"dport"}},"right":53}},{"drop":null}]`, false,
			none, none, none, "udp dport 53 drop"},
		{"l4proto", `[{"match":{"op":"==","left":{"meta":{"key":"l4proto"}},"right":"tcp"}},{"drop":null}]`, false,
			all, all, all, "meta l4proto tcp drop"},
		{"nfproto", `[{"match":{"op":"==","left":{"meta":{"key":"nfproto"}},"right":"ipv6"}},{"drop":null}]`, false,
			none, none, none, "meta nfproto ipv6 drop"},
		{"skuid range", `[{"match":{"op":"==","left":{"meta":{"key":"skuid"}},"right":{"range":[1000,2000]}}},{"drop":null}]`, false,
			none, some, none, "meta skuid 1000-2000 drop"},
		{"skuid name", `[{"match":{"op":"==","left":{"meta":{"key":"skuid"}},"right":"root"}},{"drop":null}]`, false,
			all, none, none, "meta skuid root drop"},
		{"skgid not root", `[{"match":{"op":"!=","left":{"meta":{"key":"skgid"}},"right":0}},{"drop":null}]`, false,
			none, some, none, "meta skgid != 0 drop"},
		{"oifname wildcard", `[{"match":{"op":"==","left":{"meta":{"key":"oifname"}},"right":"eth*"}},{"drop":null}]`, false,
			all, all, all, "meta oifname eth* drop"},
		{"iifname", `[{"match":{"op":"==","left":{"meta":{"key":"iifname"}},"right":"eni*"}},{"drop":null}]`, false,
			none, none, some, "meta iifname eni* drop"},
		{"ct state", `[{"match":{"op":"in","left":{"ct":{"key":"state"}},"right":["established","related"]}},{"accept":null}]`, false,
			some, some, some, "ct state established,related accept"},
		{"ct mark", `[{"match":{"op":"==","left":{"ct":{"key":"mark"}},"right":1}},{"drop":null}]`, false,
			unknown, unknown, unknown, "ct mark 1 drop"},
		{"limit", `[{"limit":{"rate":10,"per":"second"}},{"drop":null}]`, false,
			unknown, unknown, unknown, "limit drop"},
		{"daddr >= holds IMDS", `[{"match":{"op":">=","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"169.254.169.254"}},{"drop":null}]`, false,
			all, all, all, "ip daddr >= 169.254.169.254 drop"},
		{"daddr < misses IMDS", `[{"match":{"op":"<","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"169.254.169.254"}},{"drop":null}]`, false,
			none, none, none, "ip daddr < 169.254.169.254 drop"},
		{"daddr > the last address", `[{"match":{"op":">","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"255.255.255.255"}},{"drop":null}]`, false,
			none, none, none, "ip daddr > 255.255.255.255 drop"},
		{"tcp dport < 80", `[{"match":{"op":"<","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":80}},{"drop":null}]`, false,
			none, none, none, "tcp dport < 80 drop"},
		{"tcp dport <= 80", `[{"match":{"op":"<=","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":80}},{"drop":null}]`, false,
			all, all, all, "tcp dport <= 80 drop"},
		{"tcp dport > 79", `[{"match":{"op":">","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":79}},{"drop":null}]`, false,
			all, all, all, "tcp dport > 79 drop"},
		{"an operator not modelled", `[{"match":{"op":"&","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"169.254.169.254"}},{"drop":null}]`, false,
			unknown, unknown, unknown, "ip daddr & 169.254.169.254 drop"},
		{"an ordered comparison of a name", `[{"match":{"op":">","left":{"meta":{"key":"oifname"}},"right":"eth0"}},{"drop":null}]`, false,
			unknown, unknown, unknown, "meta oifname > eth0 drop"},
		{"xt owner", `[{"xt":{"type":"match","name":"owner"}},{"xt":{"type":"target","name":"REJECT"}}]`, false,
			unknown, unknown, unknown, "xt match owner xt target REJECT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var exprs []any
			if err := json.Unmarshal([]byte(tt.expr), &exprs); err != nil {
				t.Fatal(err)
			}
			r := parseNftRule(exprs, "", testUsers, nil).rule
			if r.spec != tt.text {
				t.Errorf("text %q, want %q", r.spec, tt.text)
			}
			fam := "ipv4"
			if tt.v6 {
				fam = "ipv6"
			}
			checkOutcomes(t, r, fam, tt.root, tt.user, tt.forwarded)
		})
	}
}

func TestNftVerdicts(t *testing.T) {
	tests := []struct {
		expr    string
		verdict int
		text    string
	}{
		{`[{"reject":{"type":"tcp reset"}}]`, vReject, "reject with tcp reset"},
		{`[{"dnat":{"family":"ip","addr":"127.0.0.1","port":9}}]`, vDNAT, "dnat to 127.0.0.1:9"},
		{`[{"dnat":{"family":"ip","addr":"169.254.169.254","port":80}}]`, vContinue, "dnat to 169.254.169.254:80"},
		{`[{"redirect":{"port":3128}}]`, vRedirect, "redirect:3128"},
		{`[{"queue":{"num":1}}]`, vQueue, "queue"},
		{`[{"jump":{"target":"imds"}}]`, vJump, "jump imds"},
		{`[{"goto":{"target":"imds"}}]`, vGoto, "goto imds"},
		{`[{"counter":{"packets":3,"bytes":180}},{"log":{"prefix":"x"}}]`, vContinue, "counter log"},
	}
	for _, tt := range tests {
		var exprs []any
		if err := json.Unmarshal([]byte(tt.expr), &exprs); err != nil {
			t.Fatal(err)
		}
		r := parseNftRule(exprs, "", testUsers, nil).rule
		if r.verdict != tt.verdict || r.spec != tt.text {
			t.Errorf("%s: verdict %d text %q, want %d %q", tt.expr, r.verdict, r.spec, tt.verdict, tt.text)
		}
	}
}

// The fixer recognises a rule by its spec, which must not change with its counters.
func TestNftRuleSpecIgnoresCounters(t *testing.T) {
	a := NftRuleSpec(json.RawMessage(`[{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}, {"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]`), "keep")
	b := NftRuleSpec(json.RawMessage(`[{"match":{"op":"==","left":{"meta":{"key":"l4proto"}},"right":"tcp"}},{"counter":{"packets":7,"bytes":420}},{"drop":null}]`), "keep")
	c := NftRuleSpec(json.RawMessage(`[{"match":{"op":"==","left":{"meta":{"key":"l4proto"}},"right":"udp"}},{"counter":{"packets":7,"bytes":420}},{"drop":null}]`), "keep")
	if a != b || a != `meta l4proto tcp counter drop comment "keep"` {
		t.Errorf("same rule with other counters: %q and %q", a, b)
	}
	if a == c {
		t.Errorf("different rules read alike: %q", a)
	}
}

func TestParseNftRulesetErrors(t *testing.T) {
	for _, in := range []string{
		`{"nftables": [`,
		`{"nftables": [{"table": {"family": "inet", "name": "t"}}, {"rule": {"family": "inet", "table": "t", "chain": "nope", "handle": 1, "expr": []}}]}`,
	} {
		if _, err := parseNftRuleset([]byte(in), nil, testUsers); err == nil {
			t.Errorf("parseNftRuleset(%s) succeeded", in)
		}
	}
}

// TestNftChainSharedByVerdictMap: a chain a verdict map may jump to is shared with that
// map's traffic (here tcp port 23 from INPUT), so its DROP is broad and the jump only
// IMDS's traffic takes is the rule to delete. Captured from nft 1.0.6.
func TestNftChainSharedByVerdictMap(t *testing.T) {
	ruleset := `{"nftables": [{"table": {"family": "inet", "name": "v", "handle": 1}},
{"chain": {"family": "inet", "table": "v", "name": "out", "handle": 1, "type": "filter", "hook": "output", "prio": 0, "policy": "accept"}},
{"chain": {"family": "inet", "table": "v", "name": "in", "handle": 2, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}},
{"chain": {"family": "inet", "table": "v", "name": "deny", "handle": 3}},
{"rule": {"family": "inet", "table": "v", "chain": "out", "handle": 7, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "169.254.169.254"}}, {"jump": {"target": "deny"}}]}},
{"rule": {"family": "inet", "table": "v", "chain": "in", "handle": 6, "expr": [{"vmap": {"key": {"payload": {"protocol": "tcp", "field": "dport"}}, "data": {"set": [[23, {"jump": {"target": "deny"}}]]}}}]}},
{"rule": {"family": "inet", "table": "v", "chain": "deny", "handle": 4, "expr": [{"drop": null}]}}]}`
	got := summaries(t, &sourceText{nft: []byte(ruleset)}, Config{}, ec2Packets)
	want := []string{
		"nftables/ipv4/inet v/out#1 drop everyone blocks certain | ip daddr 169.254.169.254 jump deny",
		"nftables/ipv4/inet v/deny#1 drop everyone blocks certain broad | drop",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
}

// TestNftLookups: set and map lookups are decided with the IMDS packet's key (issue 16):
// named and anonymous sets, intervals, concatenations, negation, numgen, and keys
// imdsmend can't see.
func TestNftLookups(t *testing.T) {
	sets := map[string]*nftSet{}
	for name, elems := range map[string]string{
		"svc":     `[[{"concat":["10.1.0.1","tcp",80]},{"goto":{"target":"a"}}],[{"elem":{"val":{"concat":["169.254.169.254","tcp",80]},"comment":"x"}},{"goto":{"target":"b"}}]]`,
		"ivl":     `[{"prefix":{"addr":"10.2.0.0","len":16}},{"range":["169.254.0.0","169.254.200.0"]}]`,
		"others":  `["10.1.0.1","10.1.0.2"]`,
		"portmap": `[[{"concat":[{"prefix":{"addr":"169.254.0.0","len":16}},{"range":[1,1000]}]},{"drop":null}]]`,
	} {
		var v []any
		if err := json.Unmarshal([]byte(elems), &v); err != nil {
			t.Fatal(err)
		}
		sets[name] = parseNftSet(v, name == "svc" || name == "portmap")
	}
	daddr := `{"payload":{"protocol":"ip","field":"daddr"}}`
	key3 := `{"concat":[` + daddr + `,{"meta":{"key":"l4proto"}},{"payload":{"protocol":"th","field":"dport"}}]}`
	tests := []struct {
		name string
		expr string
		v6   bool
		root outcome
		hits []vmapHit // for a vmap, what root's packet finds
		text string
	}{
		{"named set holding IMDS by range", `[{"match":{"op":"==","left":` + daddr + `,"right":"@ivl"}},{"drop":null}]`, false,
			all, nil, "ip daddr @ivl drop"},
		{"named set without IMDS", `[{"match":{"op":"==","left":` + daddr + `,"right":"@others"}},{"reject":null}]`, false,
			none, nil, "ip daddr @others reject"},
		{"not in a set without IMDS", `[{"match":{"op":"!=","left":` + daddr + `,"right":"@others"}},{"drop":null}]`, false,
			all, nil, "ip daddr != @others drop"},
		{"an ip set on an IPv6 packet", `[{"match":{"op":"!=","left":` + daddr + `,"right":"@others"}},{"drop":null}]`, true,
			none, nil, "ip daddr != @others drop"},
		{"a set that was not read", `[{"match":{"op":"==","left":` + daddr + `,"right":"@missing"}},{"drop":null}]`, false,
			unknown, nil, "ip daddr @missing drop"},
		{"anonymous concatenation", `[{"match":{"op":"==","left":{"concat":[` + daddr + `,{"payload":{"protocol":"tcp","field":"dport"}}]},"right":{"set":[{"concat":["169.254.169.254",80]}]}}},{"drop":null}]`, false,
			all, nil, "ip daddr . tcp dport { 169.254.169.254 . 80 } drop"},
		{"a key of a mark", `[{"match":{"op":"==","left":{"concat":[{"meta":{"key":"mark"}},` + daddr + `]},"right":{"set":[{"concat":[1,"169.254.169.254"]}]}}},{"drop":null}]`, false,
			unknown, nil, "meta mark . ip daddr { 1 . 169.254.169.254 } drop"},
		{"vmap finds IMDS's element", `[{"vmap":{"key":` + key3 + `,"data":"@svc"}}]`, false,
			all, []vmapHit{{vGoto, "b", all}}, "ip daddr . meta l4proto . th dport vmap @svc"},
		{"vmap of intervals", `[{"vmap":{"key":{"concat":[` + daddr + `,{"payload":{"protocol":"tcp","field":"dport"}}]},"data":"@portmap"}}]`, false,
			all, []vmapHit{{vDrop, "", all}}, "ip daddr . tcp dport vmap @portmap"},
		{"vmap on a UDP port finds nothing", `[{"vmap":{"key":{"payload":{"protocol":"udp","field":"dport"}},"data":"@portmap"}}]`, false,
			all, nil, "udp dport vmap @portmap"},
		{"vmap on l4proto by number", `[{"vmap":{"key":{"meta":{"key":"l4proto"}},"data":{"set":[[6,{"drop":null}]]}}}]`, false,
			all, []vmapHit{{vDrop, "", all}}, "meta l4proto vmap { 6 : drop }"},
		{"numgen of one", `[{"vmap":{"key":{"numgen":{"mode":"random","mod":1,"offset":0}},"data":{"set":[[0,{"goto":{"target":"e"}}]]}}}]`, false,
			all, []vmapHit{{vGoto, "e", all}}, "numgen random mod 1 vmap { 0 : goto e }"},
		{"numgen of two", `[{"vmap":{"key":{"numgen":{"mode":"random","mod":2,"offset":0}},"data":{"set":[[0,{"goto":{"target":"e"}}],[1,{"accept":null}]]}}}]`, false,
			all, []vmapHit{{vGoto, "e", some}, {vAccept, "", some}}, "numgen random mod 2 vmap { 0 : goto e, 1 : accept }"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var exprs []any
			if err := json.Unmarshal([]byte(tt.expr), &exprs); err != nil {
				t.Fatal(err)
			}
			r := parseNftRule(exprs, "", testUsers, sets).rule
			if r.spec != tt.text {
				t.Errorf("text %q, want %q", r.spec, tt.text)
			}
			p := ec2Packets[map[bool]string{false: "ipv4", true: "ipv6"}[tt.v6]]
			got := all
			for _, c := range r.conds {
				got = and(got, c(&p))
			}
			if got != tt.root {
				t.Errorf("outcome %d, want %d", got, tt.root)
			}
			if r.vmap == nil {
				return
			}
			if diff := cmp.Diff(tt.hits, r.vmap(&p), cmp.AllowUnexported(vmapHit{})); diff != "" {
				t.Errorf("vmap hits (-want +got):\n%s", diff)
			}
		})
	}
}
