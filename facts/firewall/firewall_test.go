package firewall

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/facts/route"
	"github.com/imdsmend/imdsmend/internal/paths"
)

// Packets as on an EC2 instance: IMDS via the primary interface eth0.
var ec2Packets = map[string]packet{
	"ipv4": {dst: route.IMDSv4, port: 80, src: netip.MustParseAddr("10.0.0.5"), oif: "eth0", dstKnown: true},
	"ipv6": {v6: true, dst: route.IMDSv6, port: 80, src: netip.MustParseAddr("2600:1f18::5"), oif: "eth0", dstKnown: true},
}

// loadScenario reads the captured outputs of one scenario of testdata/firewall/capture.sh.
func loadScenario(t testing.TB, name string) *sourceText {
	t.Helper()
	src := &sourceText{}
	suffix := map[string]string{"nft/ipv4": "nft4", "nft/ipv6": "nft6", "legacy/ipv4": "legacy4", "legacy/ipv6": "legacy6"}
	for _, sc := range saveCommands {
		data, err := os.ReadFile(filepath.Join("testdata/firewall", name+"."+suffix[sc.backend+"/"+sc.family]+".save"))
		if err == nil {
			src.saves = append(src.saves, saveText{sc.backend, sc.family, string(data)})
		}
	}
	src.nftSkip, _ = iptablesNftTables(src.saves)
	if data, err := os.ReadFile(filepath.Join("testdata/firewall", name+".nft.json")); err == nil {
		src.nft = data
	}
	return src
}

// summaries evaluates src and returns one summary line per rule fact.
func summaries(t *testing.T, src *sourceText, cfg Config, packets map[string]packet) []string {
	t.Helper()
	fw, err := evaluateFirewall(src, cfg, testUsers, packets)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range fw.Rules {
		got = append(got, summary(r))
	}
	return got
}

// checkOutcomes checks how much of each class's IMDS traffic (of family fam, on an
// instance) r's conditions match.
func checkOutcomes(t *testing.T, r *fwRule, fam string, root, user, forwarded outcome) {
	t.Helper()
	for cl, want := range map[class]outcome{classRoot: root, classUser: user, classForwarded: forwarded} {
		p := ec2Packets[fam]
		p.class = cl
		got := all
		for _, c := range r.conds {
			got = and(got, c(&p))
		}
		if got != want {
			t.Errorf("class %d: got outcome %d, want %d", cl, got, want)
		}
	}
}

// summary is one line per rule fact, for readable expectations.
func summary(r Rule) string {
	flags := ""
	for _, f := range []struct {
		on   bool
		name string
	}{{r.Blocks, "blocks"}, {r.Certain, "certain"}, {r.Deliberate, "deliberate"}, {r.Broad, "broad"}} {
		if f.on {
			flags += " " + f.name
		}
	}
	return fmt.Sprintf("%s/%s/%s/%s#%d %s %s%s | %s", r.Backend, r.Family, r.Table, r.Chain, r.Position, r.Effect, r.Scope, flags, r.Spec)
}

// nsPackets are as in the test namespaces: IMDS on lo, so its route is local.
var nsPackets = map[string]packet{
	"ipv4": {dst: route.IMDSv4, port: 80, src: route.IMDSv4, oif: "lo", dstKnown: true, dstLocal: true},
	"ipv6": {v6: true, dst: route.IMDSv6, port: 80, src: route.IMDSv6, oif: "lo", dstKnown: true, dstLocal: true},
}

func TestFirewallScenarios(t *testing.T) {
	tests := []struct {
		scenario string
		packets  map[string]packet
		ipv6     bool
		want     []string
	}{
		{"article", ec2Packets, false, []string{
			"nft/ipv4/filter/OUTPUT#1 reject non_root certain deliberate | -d 169.254.169.254/32 -p tcp -m owner --uid-owner 1000-10000 -j REJECT --reject-with icmp-port-unreachable",
		}},
		{"mixed", ec2Packets, false, []string{
			"nft/ipv4/filter/FORWARD#1 drop forwarded certain deliberate | -d 169.254.169.254/32 -i eni+ -j DROP",
			`nft/ipv4/filter/IMDSCHK#1 drop everyone blocks certain | -m comment --comment "block \"imds\" for now; see $TICKET" -j DROP`,
			"nft/ipv4/filter/OUTPUT#5 reject everyone blocks certain | -d 169.254.0.0/16 -p tcp -m multiport --dports 80,443 -m conntrack --ctstate NEW -j REJECT --reject-with tcp-reset",
			"nft/ipv4/filter/OUTPUT#8 drop everyone | -d 169.254.169.254/32 -m mark --mark 0x1 -j DROP",
		}},
		// In a namespace IMDS is on lo: the -o eth9 rule still misses, nothing else changes.
		{"mixed", nsPackets, false, []string{
			"nft/ipv4/filter/FORWARD#1 drop forwarded certain deliberate | -d 169.254.169.254/32 -i eni+ -j DROP",
			`nft/ipv4/filter/IMDSCHK#1 drop everyone blocks certain | -m comment --comment "block \"imds\" for now; see $TICKET" -j DROP`,
			"nft/ipv4/filter/OUTPUT#5 reject everyone blocks certain | -d 169.254.0.0/16 -p tcp -m multiport --dports 80,443 -m conntrack --ctstate NEW -j REJECT --reject-with tcp-reset",
			"nft/ipv4/filter/OUTPUT#8 drop everyone | -d 169.254.169.254/32 -m mark --mark 0x1 -j DROP",
		}},
		{"rootonly", ec2Packets, false, []string{
			"nft/ipv4/filter/OUTPUT#2 reject non_root certain deliberate | -d 169.254.169.254/32 -p tcp -j REJECT --reject-with icmp-port-unreachable",
			"nft/ipv4/filter/OUTPUT#3 reject non_root certain deliberate | -d 169.254.169.254/32 -p tcp -m owner ! --uid-owner 0 -j REJECT --reject-with icmp-port-unreachable",
		}},
		{"trustworthy", ec2Packets, false, []string{
			"nft/ipv4/filter/OUTPUT#1 reject everyone blocks certain deliberate | -d 169.254.169.254/32 -p tcp -m owner ! --uid-owner 1001 -j REJECT --reject-with icmp-port-unreachable",
		}},
		{"policy", ec2Packets, false, []string{
			"nft/ipv4/filter/OUTPUT#0 drop everyone blocks certain broad | -P OUTPUT DROP",
		}},
		// The same chain in a namespace: -o lo -j ACCEPT lets IMDS through.
		{"policy", nsPackets, false, nil},
		{"dnat", ec2Packets, false, []string{
			"nft/ipv4/nat/PREROUTING#1 dnat forwarded certain deliberate | -d 169.254.169.254/32 -i docker0 -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.17.0.1:8181",
			"nft/ipv4/nat/OUTPUT#1 dnat everyone blocks certain | -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:9",
		}},
		{"families", ec2Packets, false, []string{
			"nft/ipv6/filter/OUTPUT#1 reject everyone certain | -d fd00:ec2::254/128 -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp6-port-unreachable",
			"legacy/ipv4/filter/OUTPUT#1 drop everyone blocks certain | -d 169.254.169.254/32 -j DROP",
			"legacy/ipv6/filter/OUTPUT#1 drop everyone certain | -d fd00:ec2::/64 -j DROP",
		}},
		// With settings.ipv6 the IPv6 rules block too.
		{"families", ec2Packets, true, []string{
			"nft/ipv6/filter/OUTPUT#1 reject everyone blocks certain | -d fd00:ec2::254/128 -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp6-port-unreachable",
			"legacy/ipv4/filter/OUTPUT#1 drop everyone blocks certain | -d 169.254.169.254/32 -j DROP",
			"legacy/ipv6/filter/OUTPUT#1 drop everyone blocks certain | -d fd00:ec2::/64 -j DROP",
		}},
		{"native", ec2Packets, false, []string{
			"nftables/ipv4/inet t/out#2 reject everyone blocks certain | ip daddr 169.254.169.254 tcp dport 80 reject with icmp port-unreachable",
			"nftables/ipv4/inet t/imds#1 drop everyone blocks certain | ip daddr 169.254.169.254 drop",
			"nftables/ipv4/inet t/out#3 drop non_root certain deliberate | meta skuid 1000-2000 ip daddr 169.254.0.0/16 counter drop",
			"nftables/ipv6/inet t/out#4 reject everyone certain | ip6 daddr fd00:ec2::254 tcp dport { 80, 443 } reject with tcp reset",
			"nftables/ipv4/ip filter/OUTPUT#1 drop everyone blocks certain | ip daddr 169.254.169.254 counter drop",
			"nftables/ipv4/ip filter/OUTPUT#2 reject everyone blocks certain | ip daddr 169.254.169.254 tcp dport 80 counter reject with icmp port-unreachable",
		}},
		// Issue 8: LOGDROP's DROP also guards INPUT and 10.9.9.9, so it is broad; the jump
		// only IMDS's traffic takes is the rule to delete. The same in nft, where the
		// chain only IMDS's traffic reaches (imdsonly) keeps its own rule.
		{"shared", ec2Packets, false, []string{
			"nft/ipv4/filter/OUTPUT#2 drop everyone blocks certain | -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j LOGDROP",
			"nft/ipv4/filter/LOGDROP#1 drop everyone blocks certain broad | -j DROP",
			"nftables/ipv4/inet t/out#1 drop everyone blocks certain | ip daddr 169.254.169.254 tcp dport 80 jump deny",
			"nftables/ipv4/inet t/deny#1 drop everyone blocks certain broad | counter drop",
			"nftables/ipv4/inet t/imdsonly#1 reject everyone blocks certain | reject with icmpx port-unreachable",
		}},
		// Ranges, prefixes and comparisons that hold IMDS and far more are broad.
		{"wide", ec2Packets, false, []string{
			"nft/ipv4/filter/OUTPUT#1 reject everyone blocks certain broad | -m iprange --dst-range 1.0.0.0-254.255.255.255 -j REJECT --reject-with icmp-port-unreachable",
			"nft/ipv4/filter/OUTPUT#2 reject everyone blocks certain broad | -m iprange --dst-range 0.0.0.0-255.255.255.255 -j REJECT --reject-with icmp-port-unreachable",
			"nft/ipv4/filter/OUTPUT#3 reject everyone blocks certain | -m iprange --dst-range 169.254.169.250-169.254.169.255 -j REJECT --reject-with icmp-port-unreachable",
			"nft/ipv4/filter/OUTPUT#4 reject everyone blocks certain broad | -d 128.0.0.0/1 -j REJECT --reject-with icmp-port-unreachable",
			"nft/ipv4/filter/OUTPUT#5 reject everyone blocks certain broad | -p tcp -j REJECT --reject-with icmp-port-unreachable",
			"nftables/ipv4/ip w/out#1 reject everyone blocks certain broad | ip daddr >= 169.254.169.254 reject with icmp port-unreachable",
			"nftables/ipv4/ip w/out#3 reject everyone blocks certain broad | ip daddr > 169.254.169.253 reject with icmp port-unreachable",
			"nftables/ipv4/ip w/out#4 reject everyone blocks certain broad | ip daddr <= 169.254.169.254 reject with icmp port-unreachable",
			"nftables/ipv4/ip w/out#5 reject everyone blocks certain broad | ip daddr != 10.0.0.1 reject with icmp port-unreachable",
			"nftables/ipv4/ip w/out#6 reject everyone blocks certain broad | ip daddr 0.0.0.0/0 reject with icmp port-unreachable",
			"nftables/ipv4/ip w/out#7 reject everyone blocks certain broad | ip daddr 0.0.0.0-255.255.255.255 reject with icmp port-unreachable",
			"nftables/ipv4/ip w/out#8 reject everyone blocks certain | ip daddr 169.254.0.0/16 reject with icmp port-unreachable",
		}},
		// The jump to the imds chain needs an eth* interface: in a namespace IMDS is on lo.
		// kube-proxy's nftables mode (issue 16): the service-ips map, the cluster-ips and
		// nodeport-ips sets and the no-endpoint maps are looked up with IMDS's address, so
		// a healthy node has nothing to say, in either family.
		{"kubenft", ec2Packets, true, nil},
		// A Service whose externalIPs holds 169.254.169.254: the map element sends IMDS's
		// traffic to the Service's external chain, then to its pod. The endpoint chain's
		// DNAT serves the Service's ClusterIP too (broad); the external chain's goto is
		// IMDS's own way there.
		{"kubenft-imds", ec2Packets, true, []string{
			"nftables/ipv4/ip kube-proxy/external-JQ3RL5VM-kube-system/fake-imds/tcp/http#2 dnat everyone blocks certain | goto service-JQ3RL5VM-kube-system/fake-imds/tcp/http",
			"nftables/ipv4/ip kube-proxy/endpoint-4QYW3DBI-kube-system/fake-imds/tcp/http__10.244.7.7/8080#2 dnat everyone blocks certain broad | meta l4proto tcp dnat to 10.244.7.7:8080",
		}},
		{"native", nsPackets, false, []string{
			"nftables/ipv4/inet t/out#2 reject everyone blocks certain | ip daddr 169.254.169.254 tcp dport 80 reject with icmp port-unreachable",
			"nftables/ipv4/inet t/out#3 drop non_root certain deliberate | meta skuid 1000-2000 ip daddr 169.254.0.0/16 counter drop",
			"nftables/ipv6/inet t/out#4 reject everyone certain | ip6 daddr fd00:ec2::254 tcp dport { 80, 443 } reject with tcp reset",
			"nftables/ipv4/ip filter/OUTPUT#1 drop everyone blocks certain | ip daddr 169.254.169.254 counter drop",
			"nftables/ipv4/ip filter/OUTPUT#2 reject everyone blocks certain | ip daddr 169.254.169.254 tcp dport 80 counter reject with icmp port-unreachable",
		}},
	}
	for _, tt := range tests {
		name := tt.scenario
		if tt.packets["ipv4"].oif == "lo" {
			name += "/namespace"
		}
		if tt.ipv6 {
			name += "/ipv6"
		}
		t.Run(name, func(t *testing.T) {
			got := summaries(t, loadScenario(t, tt.scenario), Config{IPv6: tt.ipv6}, tt.packets)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
		})
	}
}

var testUsers = newUserDB(paths.New("testdata/firewall/root"))

func TestIptablesRuleConditions(t *testing.T) {
	tests := []struct {
		spec                  string
		root, user, forwarded outcome
	}{
		{"-d 169.254.169.254/32 -j DROP", all, all, all},
		{"-d 169.254.169.254/255.255.255.255 -j DROP", all, all, all},
		{"--dst 169.254.169.254/32 -j DROP", all, all, all},
		{"--destination 10.0.0.0/8 -j DROP", none, none, none},
		{"--src 169.254.169.254/32 -j DROP", none, none, unknown},
		{"! -d 169.254.169.254/32 -j DROP", none, none, none},
		{"-d 169.254.0.0/16 -p udp -j DROP", none, none, none},
		{"-p tcp -m tcp --dport 1:1024 -j DROP", all, all, all},
		{"-p tcp -m tcp --dport 81:90 -j DROP", none, none, none},
		{"-p tcp -m tcp ! --dport 81:90 -j DROP", all, all, all},
		{"-p tcp -m multiport --dports 443,8080:8090 -j DROP", none, none, none},
		{"-p tcp -m multiport --dports 22,80 -j DROP", all, all, all},
		{"-p tcp -m multiport --ports 80 -j DROP", all, all, all},
		{"-p tcp -m tcp --sport 1024:65535 -j DROP", unknown, unknown, unknown},
		{"-p tcp -m tcp --sport 0:65535 -j DROP", all, all, all},
		{"-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j DROP", some, some, some},
		{"-p tcp -m tcp --syn -j DROP", some, some, some},
		{"-m owner --uid-owner 0 -j DROP", all, none, none},
		{"-m owner --uid-owner apache -j DROP", none, some, none},
		{"-m owner --uid-owner nosuchuser -j DROP", unknown, unknown, unknown},
		{"-m owner --uid-owner 0-4294967294 -j DROP", all, all, none},
		{"-m owner --gid-owner 0 -j DROP", all, some, none},
		{"-m owner ! --uid-owner 1000-10000 -j DROP", all, some, all},
		{"-m owner --socket-exists -j DROP", all, all, none},
		{"-m conntrack --ctstate NEW,ESTABLISHED -j DROP", all, all, all},
		{"-m conntrack --ctstate RELATED -j DROP", none, none, none},
		{"-m conntrack ! --ctstate INVALID -j DROP", all, all, all},
		{"-m state --state ESTABLISHED -j DROP", some, some, some},
		{"-m conntrack --ctstate NEW,BOGUS -j DROP", unknown, unknown, unknown},
		{"-o eth0 -j DROP", all, all, all},
		{"-o eth+ -j DROP", all, all, all},
		{"-o ens+ -j DROP", none, none, none},
		{"! -o lo -j DROP", all, all, all},
		{"-i eth0 -j DROP", none, none, some},
		{"-i + -j DROP", none, none, all},
		{"-s 10.0.0.0/8 -j DROP", all, all, unknown},
		{"-s 192.168.0.0/16 -j DROP", none, none, unknown},
		{"-m addrtype --dst-type LOCAL -j DROP", none, none, none},
		{"-m addrtype --dst-type UNICAST -j DROP", all, all, all},
		{"-m addrtype --src-type LOCAL -j DROP", all, all, unknown},
		{"-m iprange --dst-range 169.254.169.250-169.254.169.255 -j DROP", all, all, all},
		{"-m iprange --dst-range 169.254.169.250-bogus -j DROP", unknown, unknown, unknown},
		{"-m string --algo bm --string foo -j DROP", unknown, unknown, unknown},
		{"-m set --match-set imds dst -j DROP", unknown, unknown, unknown},
		{"-f -j DROP", none, none, none},
		{"! -f -j DROP", all, all, all},
		{"-m pkttype --pkt-type unicast -j DROP", all, all, all},
		{`-m comment --comment "x y" -j DROP`, all, all, all},
		{"-p 6 -j DROP", all, all, all},
		{"! -p tcp -j DROP", none, none, none},
		{"-d 169.254.169.254/255.0.255.0 -j DROP", unknown, unknown, unknown},
		{"-m iprange --dst-range 169.254.169.250-169.254.169.254 -j DROP", all, all, all},
		{"-m iprange --dst-range 169.254.169.254-169.254.169.255 -j DROP", all, all, all},
		{"-m iprange --dst-range 169.254.169.255-169.254.170.0 -j DROP", none, none, none},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			r := parseSpec(t, tt.spec)
			checkOutcomes(t, r, "ipv4", tt.root, tt.user, tt.forwarded)
		})
	}
}

// parseSpec parses one IPv4 rule written as iptables -S prints it.
func parseSpec(t *testing.T, spec string) *fwRule {
	t.Helper()
	words, err := SplitWords(spec)
	if err != nil {
		t.Fatal(err)
	}
	return parseIptablesRule(words, false, testUsers)
}

func TestIptablesTargets(t *testing.T) {
	tests := []struct {
		spec      string
		verdict   int
		target    string
		uncertain bool
	}{
		{"-j REJECT --reject-with tcp-reset", vReject, "", false},
		{"-j DROP", vDrop, "", false},
		{"-j ACCEPT", vAccept, "", false},
		{"-j RETURN", vReturn, "", false},
		{"-j DNAT --to-destination 127.0.0.1:9", vDNAT, "", false},
		{"-j DNAT --to-destination 169.254.169.254:80", vContinue, "", false},
		{"-j DNAT --to-destination 169.254.169.254", vContinue, "", false},
		{"-j DNAT --to-destination 169.254.169.254:8080", vDNAT, "", false},
		{"-j REDIRECT --to-ports 3128", vRedirect, "", false},
		{"-j NFQUEUE --queue-num 1", vQueue, "", true},
		{"-j IMDSCHK", vJump, "IMDSCHK", false},
		{"-g IMDSCHK", vGoto, "IMDSCHK", false},
		{`-j LOG --log-prefix "imds: "`, vJump, "LOG", false},
		{"-d 169.254.169.254/32", vContinue, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			r := parseSpec(t, tt.spec)
			if r.verdict != tt.verdict || r.target != tt.target || r.uncertainVerdict != tt.uncertain {
				t.Errorf("got verdict %d target %q uncertain %v, want %d %q %v", r.verdict, r.target, r.uncertainVerdict, tt.verdict, tt.target, tt.uncertain)
			}
		})
	}
}

// TestFirewallTraversal checks jumps, returns, gotos, accepts and policies on handwritten
// rulesets.
func TestFirewallTraversal(t *testing.T) {
	tests := []struct {
		name  string
		rules string
		want  []string
	}{
		{"return spares root", `
:OUTPUT ACCEPT [0:0]
:C - [0:0]
-A OUTPUT -d 169.254.169.254/32 -j C
-A C -m owner --uid-owner 0 -j RETURN
-A C -j DROP`, []string{"nft/ipv4/filter/C#2 drop non_root certain deliberate | -j DROP"}},
		{"accept before drop shadows it", `
:OUTPUT ACCEPT [0:0]
-A OUTPUT -d 169.254.169.254/32 -p tcp -j ACCEPT
-A OUTPUT -d 169.254.169.254/32 -j DROP`, nil},
		{"accept in a user chain ends the base chain", `
:OUTPUT DROP [0:0]
:OK - [0:0]
-A OUTPUT -j OK
-A OUTPUT -j DROP
-A OK -d 169.254.0.0/16 -j ACCEPT`, nil},
		{"only NEW accepted: the rest meets the policy", `
:OUTPUT DROP [0:0]
-A OUTPUT -m conntrack --ctstate NEW -j ACCEPT`, []string{"nft/ipv4/filter/OUTPUT#0 drop everyone blocks certain broad | -P OUTPUT DROP"}},
		{"an accept that depends on a mark makes what follows uncertain", `
:OUTPUT ACCEPT [0:0]
-A OUTPUT -m mark --mark 0x1 -j ACCEPT
-A OUTPUT -d 169.254.169.254/32 -j DROP`, []string{"nft/ipv4/filter/OUTPUT#2 drop everyone | -d 169.254.169.254/32 -j DROP"}},
		{"owner on the jump makes the drop deliberate", `
:OUTPUT ACCEPT [0:0]
:C - [0:0]
-A OUTPUT -m owner ! --uid-owner 1001 -j C
-A C -d 169.254.169.254/32 -j DROP`, []string{"nft/ipv4/filter/C#1 drop everyone blocks certain deliberate | -d 169.254.169.254/32 -j DROP"}},
		{"a drop of everything is broad", `
:OUTPUT ACCEPT [0:0]
-A OUTPUT -o lo -j ACCEPT
-A OUTPUT -j DROP`, []string{"nft/ipv4/filter/OUTPUT#2 drop everyone blocks certain broad | -j DROP"}},
		{"every blocker is listed, not just the first", `
:OUTPUT ACCEPT [0:0]
-A OUTPUT -d 169.254.169.254/32 -j DROP
-A OUTPUT -d 169.254.169.254/32 -j DROP`, []string{
			"nft/ipv4/filter/OUTPUT#1 drop everyone blocks certain | -d 169.254.169.254/32 -j DROP",
			"nft/ipv4/filter/OUTPUT#2 drop everyone blocks certain | -d 169.254.169.254/32 -j DROP",
		}},
		{"goto", `
:OUTPUT ACCEPT [0:0]
:G - [0:0]
-A OUTPUT -d 169.254.169.254/32 -g G
-A G -p tcp -j REJECT`, []string{"nft/ipv4/filter/G#1 reject everyone blocks certain | -p tcp -j REJECT"}},
		{"a jump to a missing chain is ignored", `
:OUTPUT ACCEPT [0:0]
-A OUTPUT -j NOWHERE`, nil},
		{"INPUT does not see output traffic", `
:INPUT ACCEPT [0:0]
-A INPUT -s 169.254.169.254/32 -j DROP`, nil},
		// Issue 8: a chain other ways reach (here only INPUT) holds a broad rule; with no
		// jump specific to IMDS on the way there is nothing narrow to delete.
		{"a shared chain without a narrow jump", `
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:LOGDROP - [0:0]
-A INPUT -j LOGDROP
-A OUTPUT -p tcp -j LOGDROP
-A LOGDROP -d 169.254.169.254/32 -j DROP`, []string{"nft/ipv4/filter/LOGDROP#1 drop everyone blocks certain | -d 169.254.169.254/32 -j DROP"}},
		{"a shared chain without any narrowing", `
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:LOGDROP - [0:0]
-A INPUT -j LOGDROP
-A OUTPUT -p tcp -j LOGDROP
-A LOGDROP -j DROP`, []string{"nft/ipv4/filter/LOGDROP#1 drop everyone blocks certain broad | -j DROP"}},
		{"FORWARD shares the chain: the last narrow jump on the way is the one to delete", `
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:IMDS - [0:0]
:DENY - [0:0]
-A FORWARD -j DENY
-A OUTPUT -d 169.254.0.0/16 -j IMDS
-A IMDS -p tcp -j DENY
-A DENY -j REJECT`, []string{
			"nft/ipv4/filter/DENY#1 reject everyone blocks certain broad | -j REJECT",
			"nft/ipv4/filter/IMDS#1 reject everyone blocks certain | -p tcp -j DENY",
		}},
		// Issue 17: "last path wins" must not hold, in either order.
		{"a chain reached by a broad jump, then a narrow one", `
:OUTPUT ACCEPT [0:0]
:C - [0:0]
-A OUTPUT -p tcp -j C
-A OUTPUT -d 169.254.169.254/32 -j C
-A C -j DROP`, []string{
			"nft/ipv4/filter/C#1 drop everyone blocks certain broad | -j DROP",
			"nft/ipv4/filter/OUTPUT#2 drop everyone blocks certain | -d 169.254.169.254/32 -j C",
		}},
		{"a chain reached by a narrow jump, then a broad one", `
:OUTPUT ACCEPT [0:0]
:C - [0:0]
-A OUTPUT -d 169.254.169.254/32 -j C
-A OUTPUT -p tcp -j C
-A C -j DROP`, []string{
			"nft/ipv4/filter/OUTPUT#1 drop everyone blocks certain | -d 169.254.169.254/32 -j C",
			"nft/ipv4/filter/C#1 drop everyone blocks certain broad | -j DROP",
		}},
		{"a chain whose every way in is narrow is not shared", `
:OUTPUT ACCEPT [0:0]
:C - [0:0]
-A OUTPUT -d 169.254.169.254/32 -j C
-A OUTPUT -d 169.254.0.0/16 -p tcp -j C
-A C -j DROP`, []string{"nft/ipv4/filter/C#1 drop everyone blocks certain | -j DROP"}},
		// Every piece of the traffic accepted, one by one, is all of it: the DROP after the
		// jump is never reached.
		{"all pieces accepted", `
:OUTPUT ACCEPT [0:0]
:OK - [0:0]
-A OUTPUT -j OK
-A OUTPUT -d 169.254.169.254/32 -j DROP
-A OK -m conntrack --ctstate NEW -j ACCEPT
-A OK -j ACCEPT`, nil},
		{"POSTROUTING carries local traffic", `
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -d 169.254.169.254/32 -j DROP`, []string{"nft/ipv4/filter/POSTROUTING#1 drop everyone blocks certain | -d 169.254.169.254/32 -j DROP"}},
		{"--socket-exists is deliberate", `
:OUTPUT ACCEPT [0:0]
-A OUTPUT -d 169.254.169.254/32 -m owner --socket-exists -j DROP`, []string{"nft/ipv4/filter/OUTPUT#1 drop everyone blocks certain deliberate | -d 169.254.169.254/32 -m owner --socket-exists -j DROP"}},
		{"-d 0.0.0.0/0 is broad", `
:OUTPUT ACCEPT [0:0]
-A OUTPUT -d 0.0.0.0/0 -j DROP`, []string{"nft/ipv4/filter/OUTPUT#1 drop everyone blocks certain broad | -d 0.0.0.0/0 -j DROP"}},
		{"-d 128.0.0.0/1 is broad", `
:OUTPUT ACCEPT [0:0]
-A OUTPUT -d 128.0.0.0/1 -j DROP`, []string{"nft/ipv4/filter/OUTPUT#1 drop everyone blocks certain broad | -d 128.0.0.0/1 -j DROP"}},
		{"-d 169.0.0.0/8 is narrow enough", `
:OUTPUT ACCEPT [0:0]
-A OUTPUT -d 169.0.0.0/8 -j DROP`, []string{"nft/ipv4/filter/OUTPUT#1 drop everyone blocks certain | -d 169.0.0.0/8 -j DROP"}},
		{"a full-width iprange is broad", `
:OUTPUT ACCEPT [0:0]
-A OUTPUT -m iprange --dst-range 0.0.0.0-255.255.255.255 -j DROP`, []string{"nft/ipv4/filter/OUTPUT#1 drop everyone blocks certain broad | -m iprange --dst-range 0.0.0.0-255.255.255.255 -j DROP"}},
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

func TestParseSaveErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"-A OUTPUT -j DROP\n", `line 1: "-A OUTPUT -j DROP" outside a table`},
		{"*filter\n:OUTPUT ACCEPT [0:0]\n-A INPUT -j DROP\nCOMMIT\n", "line 3: rule in undeclared chain INPUT"},
		{"*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -m comment --comment \"open\nCOMMIT\n", "line 3: unterminated double quote"},
		{"*filter\n:OUTPUT\nCOMMIT\n", `line 2: bad chain line ":OUTPUT"`},
		{"*filter\n:OUTPUT ACCEPT [0:0]\n", "table filter has no COMMIT"},
		{"*filter\nbogus\nCOMMIT\n", `line 2: unexpected "bogus"`},
	}
	for _, tt := range tests {
		_, err := parseSave(tt.in, "nft", "ipv4", testUsers)
		if err == nil || err.Error() != tt.want {
			t.Errorf("parseSave(%q) error = %v, want %q", tt.in, err, tt.want)
		}
	}
}

// TestFirewallUndecidable: a jump loop (which the kernel refuses, but text may hold) and
// chains that each jump twice to the next (2^40 paths) must end quickly in an error, not
// in a report that misses the DROP.
func TestFirewallUndecidable(t *testing.T) {
	fanOut := "*filter\n:OUTPUT ACCEPT [0:0]\n"
	for i := range 40 {
		fanOut += fmt.Sprintf(":C%d - [0:0]\n", i)
	}
	fanOut += "-A OUTPUT -j C0\n"
	for i := range 39 {
		fanOut += fmt.Sprintf("-A C%d -j C%d\n-A C%d -j C%d\n", i, i+1, i, i+1)
	}
	fanOut += "-A C39 -d 169.254.169.254/32 -j DROP\nCOMMIT\n"
	loop := "*filter\n:OUTPUT ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n-A OUTPUT -j A\n-A A -j B\n-A B -j A\n-A B -d 169.254.169.254/32 -j DROP\nCOMMIT\n"
	for name, save := range map[string]string{"fan-out": fanOut, "loop": loop} {
		fw, err := evaluateFirewall(&sourceText{saves: []saveText{{"nft", "ipv4", save}}}, Config{}, testUsers, ec2Packets)
		if err == nil {
			t.Errorf("%s: no error; rules = %+v", name, fw.Rules)
		}
	}
}

// BenchmarkEvaluateFirewall parses and walks 1,000 captured rules that don't concern IMDS:
// the in-process share of the firewall probe (the rest is iptables-nft-save itself).
func BenchmarkEvaluateFirewall(b *testing.B) {
	src := loadScenario(b, "bench1000")
	for b.Loop() {
		fw, err := evaluateFirewall(src, Config{}, testUsers, ec2Packets)
		if err != nil || len(fw.Rules) != 0 {
			b.Fatalf("rules %v, err %v", fw, err)
		}
	}
}
