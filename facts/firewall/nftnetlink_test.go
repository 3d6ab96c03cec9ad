package firewall

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// nativeCase is one native nftables rule in chain out (a base chain on the output hook)
// of table t, with the sets it names. hook is the chain's type (filter unless nat).
type nativeCase struct {
	family, sets, rule, chainType string
	// runs: the netlink pass runs the rule (else the full read must do it);
	// decided: it decides the rule for every probe packet (none or all).
	runs, decided bool
}

var nativeCorpus = []nativeCase{
	{rule: "ip daddr 169.254.169.254 drop", runs: true, decided: true},
	{rule: "ip daddr 10.0.0.0/8 drop", runs: true, decided: true},
	{rule: "ip daddr 169.254.0.0/16 tcp dport 80 reject", runs: true, decided: true},
	{rule: "ip daddr != 169.254.169.254 drop", runs: true, decided: true},
	{rule: "ip daddr 169.254.169.250-169.254.169.255 drop", runs: true, decided: true},
	{rule: "ip daddr 10.0.0.1-10.0.0.9 drop", runs: true, decided: true},
	{rule: "ip daddr { 169.254.0.0/16, 10.0.0.0/8 } drop", runs: true, decided: true},
	{rule: "ip daddr { 10.0.0.0/8, 192.168.0.0/16 } drop", runs: true, decided: true},
	{rule: "tcp dport 443 drop", runs: true, decided: true},
	{rule: "tcp dport { 80, 443 } drop", runs: true, decided: true},
	{rule: "tcp dport 1-1024 drop", runs: true, decided: true},
	{rule: "tcp dport > 1024 drop", runs: true, decided: true},
	{rule: "th dport 80 drop", runs: true, decided: true},
	{rule: "udp dport 53 drop", runs: true, decided: true},
	{rule: "meta l4proto tcp accept", runs: true, decided: true},
	{rule: "meta l4proto { udp, icmp } accept", runs: true, decided: true},
	{rule: "ip protocol tcp drop", runs: true, decided: true},
	{rule: "ip saddr 10.0.0.0/8 drop", runs: true},
	{rule: "ct state established,related accept", runs: true},
	{rule: "ct state new drop", runs: true},
	{rule: "meta mark 0x1 drop", runs: true},
	{rule: "meta mark set 0x1", runs: true, decided: true},
	{rule: "oifname \"eth0\" drop", runs: true},
	{rule: "iifname \"eth0\" drop", runs: true},
	{rule: "meta skuid 0 accept", runs: true},
	{rule: "limit rate 5/second drop", runs: true},
	{rule: "counter log prefix \"imds \" drop", runs: true, decided: true},
	{rule: "fib daddr type local drop", runs: true},
	{rule: "ip dscp 1 drop", runs: true},
	{rule: "tcp flags syn drop", runs: true},
	{rule: "ip daddr 169.254.169.254 jump other", runs: true, decided: true},
	{rule: "ip daddr 10.0.0.1 goto other", runs: true, decided: true},
	{rule: "return", runs: true, decided: true},
	{rule: "numgen random mod 2 vmap { 0 : accept, 1 : drop }", runs: true},
	{sets: "set s { type ipv4_addr; elements = { 169.254.169.254, 10.0.0.1 } }", rule: "ip daddr @s drop", runs: true, decided: true},
	{sets: "set s { type ipv4_addr; elements = { 10.0.0.1 } }", rule: "ip daddr @s drop", runs: true, decided: true},
	{sets: "set s { type ipv4_addr; elements = { 169.254.169.254 } }", rule: "ip daddr != @s drop", runs: true, decided: true},
	{sets: "set s { type ipv4_addr; flags interval; elements = { 169.254.0.0/16 } }", rule: "ip daddr @s drop", runs: true, decided: true},
	{sets: "set s { type ipv4_addr; flags interval; elements = { 10.0.0.0/8, 169.254.169.255 } }", rule: "ip daddr @s drop", runs: true, decided: true},
	{sets: "set s { type ipv4_addr . inet_service; elements = { 169.254.169.254 . 80 } }", rule: "ip daddr . tcp dport @s drop", runs: true, decided: true},
	{sets: "set s { type ipv4_addr . inet_service; elements = { 169.254.169.254 . 443 } }", rule: "ip daddr . tcp dport @s drop", runs: true, decided: true},
	{sets: "set s { type ipv4_addr . inet_service; flags interval; elements = { 169.254.169.0/24 . 80-90 } }", rule: "ip daddr . tcp dport @s drop", runs: true, decided: true},
	{sets: "set s { type ipv4_addr . inet_service; flags interval; elements = { 169.254.169.0/24 . 81-90 } }", rule: "ip daddr . tcp dport @s drop", runs: true, decided: true},
	{sets: "set s { type ipv4_addr . ipv4_addr; elements = { 10.0.0.5 . 169.254.169.254 } }", rule: "ip saddr . ip daddr @s drop", runs: true},
	{sets: "set s { type ipv4_addr . ipv4_addr; elements = { 10.0.0.5 . 10.0.0.6 } }", rule: "ip saddr . ip daddr @s drop", runs: true, decided: true},
	{sets: "map m { type ipv4_addr . inet_proto . inet_service : verdict; elements = { 169.254.169.254 . tcp . 80 : drop, 10.0.0.1 . tcp . 80 : accept } }", rule: "ip daddr . meta l4proto . th dport vmap @m", runs: true, decided: true},
	{sets: "map m { type ipv4_addr . inet_proto . inet_service : verdict; elements = { 10.0.0.1 . tcp . 80 : goto other } }", rule: "ip daddr . meta l4proto . th dport vmap @m", runs: true, decided: true},
	{sets: "map m { type ipv4_addr : verdict; elements = { 169.254.169.254 : jump other } }", rule: "ip daddr vmap @m", runs: true, decided: true},
	{sets: "map m { type ipv4_addr : ipv4_addr; elements = { 10.0.0.1 : 10.0.0.2 } }", rule: "dnat to ip daddr map @m", chainType: "nat", runs: true, decided: true},
	{rule: "masquerade", chainType: "natpost", runs: true, decided: true},
	{rule: "ip daddr 169.254.169.254 dnat to 10.0.0.1", chainType: "nat", runs: true, decided: true},
	{rule: "ip daddr 169.254.169.254 tcp dport 80 redirect to :8080", chainType: "nat", runs: true, decided: true},
	{family: "inet", rule: "ip daddr 169.254.169.254 drop", runs: true, decided: true},
	{family: "inet", rule: "ip6 daddr fd00:ec2::254 drop", runs: true, decided: true},
	{family: "inet", rule: "ip6 daddr fd00::/8 tcp dport 80 drop", runs: true, decided: true},
	{family: "inet", rule: "meta nfproto ipv6 drop", runs: true, decided: true},
	{family: "inet", rule: "tcp dport 80 drop", runs: true, decided: true},
	{family: "inet", sets: "set s6 { type ipv6_addr; elements = { fd00:ec2::254 } }", rule: "ip6 daddr @s6 drop", runs: true, decided: true},
	{family: "ip6", rule: "ip6 daddr fd00:ec2::254 tcp dport 80 reject", runs: true, decided: true},
	{family: "ip6", rule: "ip6 nexthdr tcp drop", runs: true, decided: true},
	{rule: "meta cpu 1 drop", runs: true},
	{rule: "ip daddr & 255.255.0.0 == 169.254.0.0 accept", runs: true},
	{rule: "@nh,132,8 0x9f accept", runs: true},
	{rule: "tcp dport & 0xff00 == 0x0 drop", runs: true},
	{sets: "set d { type ipv4_addr; size 65535; flags dynamic; }", rule: "meter m { ip saddr limit rate 10/second } accept", runs: true},
	{sets: "set d { type ipv4_addr; size 65535; flags dynamic; }", rule: "update @d { ip saddr limit rate 10/second } accept", runs: true},
	{sets: "set d { type ipv4_addr; size 65535; flags dynamic; }", rule: "add @d { ip saddr } accept", runs: true, decided: true},
	{rule: "ip daddr 169.254.169.254 meta l4proto tcp tproxy to :8080", chainType: "tproxy"},
	{rule: "ip daddr 169.254.169.254 ct count over 10 drop"},
}

// TestNativeNetlinkAgreesWithJSON loads each rule of nativeCorpus with nft and runs it
// both ways: over netlink (runRule, as the chain walk does) and from `nft -j list ruleset`
// (parseNftRuleset, as the full read does). Wherever the netlink pass decides the rule
// for a probe packet (it certainly matches or certainly does not), the JSON reader
// decides the same; the verdicts (and a verdict map's findings) agree.
func TestNativeNetlinkAgreesWithJSON(t *testing.T) {
	if !inNetns(t, "-test.run") {
		return
	}
	for _, tc := range nativeCorpus {
		family := tc.family
		if family == "" {
			family = "ip"
		}
		t.Run(family+" "+tc.rule, func(t *testing.T) {
			compareNative(t, family, tc)
		})
	}
}

func compareNative(t *testing.T, family string, tc nativeCase) {
	chainType, hook := "filter", "output"
	switch tc.chainType {
	case "nat":
		chainType = "nat"
	case "natpost":
		chainType, hook = "nat", "postrouting"
	case "tproxy":
		hook = "prerouting"
	}
	ruleset := fmt.Sprintf("flush ruleset\ntable %s t {\n %s\n chain other { }\n chain out { type %s hook %s priority 0; policy accept;\n  %s\n }\n}\n",
		family, tc.sets, chainType, hook, tc.rule)
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v: %s\n%s", err, out, ruleset)
	}
	js, err := runTool(context.Background(), "nft", "-j", "list", "ruleset")
	if err != nil {
		t.Fatal(err)
	}
	jsonTables, err := parseNftRuleset([]byte(js), nil, testUsers)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := nftTables()
	if err != nil {
		t.Fatal(err)
	}
	bases, err := nftBaseChains()
	if err != nil {
		t.Fatal(err)
	}
	nlTables, ok := readNativeTables(ids, bases)
	if ok != tc.runs {
		t.Fatalf("netlink pass ran the rule: %v, want %v", ok, tc.runs)
	}
	if !ok {
		return
	}
	if len(nlTables) != len(jsonTables) {
		t.Fatalf("%d tables over netlink, %d from JSON", len(nlTables), len(jsonTables))
	}
	for i, nt := range nlTables {
		jt := jsonTables[i]
		if nt.family != jt.family || nt.name != jt.name {
			t.Fatalf("table %s %s over netlink, %s %s from JSON", nt.family, nt.name, jt.family, jt.name)
		}
		nc, jc := nt.chains["out"], jt.chains["out"]
		if nc == nil || jc == nil || len(jc.rules) != 1 || len(nc.rules) > 1 || nc.hook != jc.hook || nc.policy != jc.policy {
			t.Fatalf("chain out: netlink %+v, JSON %+v", nc, jc)
		}
		jr := jc.rules[0]
		var nr *fwRule
		if len(nc.rules) == 1 {
			nr = nc.rules[0]
		}
		decidedAll := true
		for _, p := range xtProbePackets(nt.family == "ipv6") {
			no, jo := none, all
			if nr != nil {
				no = all
				for _, c := range nr.conds {
					no = and(no, c(&p))
				}
			}
			for _, c := range jr.conds {
				jo = and(jo, c(&p))
			}
			decided := no == none || no == all
			decidedAll = decidedAll && decided
			if decided && no != jo {
				t.Errorf("%s packet %+v: netlink decides %d, JSON %d", nt.family, p, no, jo)
				return
			}
			if nr == nil || no == none {
				continue
			}
			if nr.verdict != jr.verdict && !(nr.verdict == vDNAT && jr.verdict == vContinue) || nr.target != jr.target || nr.uncertainVerdict != jr.uncertainVerdict {
				t.Errorf("%s: verdict %d %q uncertain %v, JSON %d %q %v", nt.family, nr.verdict, nr.target, nr.uncertainVerdict, jr.verdict, jr.target, jr.uncertainVerdict)
				return
			}
			if (nr.vmap == nil) != (jr.vmap == nil) {
				t.Errorf("%s: verdict map over netlink %v, in JSON %v", nt.family, nr.vmap != nil, jr.vmap != nil)
				return
			}
			if nr.vmap != nil {
				if n, j := vmapFound(nr.vmap(&p)), vmapFound(jr.vmap(&p)); !slices.Equal(n, j) {
					t.Errorf("%s packet %+v: the map finds %v over netlink, %v in JSON", nt.family, p, n, j)
					return
				}
			}
		}
		if tc.decided && !decidedAll {
			t.Errorf("%s: netlink left the rule undecided for some packet", nt.family)
		}
	}
}

// vmapFound lists the verdicts a verdict map may find, and whether certainly.
func vmapFound(hits []vmapHit) []string {
	var out []string
	for _, h := range hits {
		if h.o != none {
			out = append(out, fmt.Sprintf("%d %s certain=%v", h.verdict, h.target, h.o == all))
		}
	}
	slices.Sort(out)
	return out
}

// TestReadChainsNative: with native nftables tables, the chain walk answers alone when
// nothing on IMDS's path stops it, and leaves the rest to the full read: a rule to
// report, a drop policy, a rule it can't run on the path. Chains off the path (input) are
// not read.
func TestReadChainsNative(t *testing.T) {
	if !inNetns(t, "-test.run") {
		return
	}
	tests := []struct {
		name, ruleset string
		wantOK        bool
	}{
		{"a map without IMDS", `table ip k {
			map m { type ipv4_addr . inet_proto . inet_service : verdict; elements = { 10.0.0.1 . tcp . 80 : goto svc } }
			chain svc { drop; }
			chain out { type nat hook output priority -100; ip daddr . meta l4proto . th dport vmap @m; }
		}`, true},
		{"a map sending IMDS to a drop", `table ip k {
			map m { type ipv4_addr . inet_proto . inet_service : verdict; elements = { 169.254.169.254 . tcp . 80 : goto svc } }
			chain svc { drop; }
			chain out { type nat hook output priority -100; ip daddr . meta l4proto . th dport vmap @m; }
		}`, false},
		{"a drop policy on output", `table inet f { chain out { type filter hook output priority 0; policy drop;
			}
		}`, false},
		{"a drop policy on input", `table inet f { chain in { type filter hook input priority 0; policy drop; meta l4proto tcp socket transparent 1 accept;
			}
		}`, true},
		{"an accept of IMDS before a drop", `table inet f {
			chain out { type filter hook output priority 0; ip daddr 169.254.169.254 tcp dport 80 accept; ip6 daddr fd00:ec2::254 tcp dport 80 accept; drop; }
		}`, true},
		{"a rule it can't run", `table ip f { chain out { type filter hook output priority 0; meta l4proto tcp socket transparent 1 drop;
			}
		}`, false},
		{"a jump to a chain rejecting IMDS", `table ip f {
			chain c { ip daddr 169.254.0.0/16 reject; }
			chain out { type filter hook output priority 0; ct state new jump c; }
		}`, false},
		{"beside iptables-nft", `table ip f {
			chain out { type filter hook output priority 0; ip daddr 10.0.0.0/8 drop; }
		}
		table ip filter {
			chain OUTPUT { type filter hook output priority 0; ip daddr 10.0.0.0/8 counter drop; }
		}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("nft", "-f", "-")
			cmd.Stdin = strings.NewReader("flush ruleset\n" + tt.ruleset + "\n")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("nft -f: %v: %s", err, out)
			}
			fw, ok := readChains(context.Background(), testUsers, ec2Packets)
			if ok != tt.wantOK {
				t.Fatalf("readChains ok = %v, want %v", ok, tt.wantOK)
			}
			if ok && (len(fw.Rules) != 0 || len(fw.Sources) == 0) {
				t.Errorf("rules %v sources %v, want no rule and what was read", fw.Rules, fw.Sources)
			}
		})
	}
}
