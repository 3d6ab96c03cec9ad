package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// xtCase is a rule of the corpus; table is filter unless named.
type xtCase struct {
	rule, table string
	undecoded   bool
}

// xtCorpus are iptables rules as users and kube-proxy write them. undecoded marks those the
// netlink decoder must leave to the text reader.
var xtCorpus = []xtCase{
	{rule: "-j ACCEPT"},
	{rule: "-j DROP"},
	{rule: "-j RETURN"},
	{rule: "-j REJECT"},
	{rule: "-p tcp -j REJECT --reject-with tcp-reset"},
	{rule: "-j USER"},
	{rule: "-g USER"},
	{rule: "-j MARK --set-xmark 0x4000/0x4000"},
	{rule: "-j LOG --log-prefix imds"},
	{rule: "-j NFQUEUE --queue-num 3"},
	{rule: "-d 169.254.169.254/32 -j DROP"},
	{rule: "-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j REJECT"},
	{rule: "-d 169.254.0.0/16 -j DROP"},
	{rule: "-d 169.254.169.0/24 -j DROP"},
	{rule: "-d 169.254.169.248/29 -j DROP"},
	{rule: "-d 169.0.0.0/8 -j DROP"},
	{rule: "-d 128.0.0.0/1 -j DROP"},
	{rule: "-d 169.254.169.254/31 -j DROP"},
	{rule: "-d 10.100.0.1/32 -p tcp -m comment --comment \"ns/svc:http cluster IP\" -m tcp --dport 80 -j USER"},
	{rule: "-d 10.0.0.0/8 -j DROP"},
	{rule: "-d 169.254.170.0/23 -j DROP"},
	{rule: "! -d 169.254.169.254/32 -j DROP"},
	{rule: "! -d 10.0.0.0/8 -j DROP"},
	{rule: "-s 10.0.0.0/8 -j DROP"},
	{rule: "! -s 10.244.0.0/16 -d 169.254.169.254/32 -j DROP"},
	{rule: "! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming localnet connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"},
	{rule: "-p tcp -j DROP"},
	{rule: "-p udp -j DROP"},
	{rule: "-p icmp -j DROP"},
	{rule: "! -p tcp -j DROP"},
	{rule: "-p tcp -m tcp --dport 80 -j DROP"},
	{rule: "-p tcp -m tcp ! --dport 80 -j DROP"},
	{rule: "-p tcp -m tcp --dport 443 -j DROP"},
	{rule: "-p tcp -m tcp --sport 1024 -j DROP"},
	{rule: "-p tcp -m tcp -j DROP"},
	{rule: "-p udp -m udp --dport 53 -j DROP"},
	{rule: "-o eth0 -j DROP"},
	{rule: "-o eth+ -j DROP"},
	{rule: "! -o lo -j DROP"},
	{rule: "-o ens5 -j DROP"},
	{rule: "-i eth0 -j DROP"},
	{rule: "-i + -j DROP"},
	{rule: "-m addrtype --dst-type LOCAL -j USER"},
	{rule: "-m addrtype --dst-type UNICAST -j DROP"},
	{rule: "-m addrtype ! --dst-type LOCAL -j DROP"},
	{rule: "-m addrtype --src-type LOCAL -j DROP"},
	{rule: "-m addrtype --src-type LOCAL --dst-type LOCAL,UNICAST -j DROP"},
	{rule: "-m addrtype --dst-type LOCAL --limit-iface-out -j DROP"},
	{rule: "-m conntrack --ctstate NEW -j DROP"},
	{rule: "-m conntrack --ctstate INVALID -j DROP"},
	{rule: "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"},
	{rule: "-m conntrack --ctstate NEW,ESTABLISHED -j DROP"},
	{rule: "-m conntrack --ctstate SNAT,DNAT,UNTRACKED -j DROP"},
	{rule: "-m conntrack ! --ctstate NEW -j DROP"},
	{rule: "-m state --state NEW -j DROP"},
	{rule: "-m state --state ESTABLISHED,UNTRACKED -j DROP"},
	{rule: "-m mark --mark 0x4000/0x4000 -j ACCEPT"},
	{rule: "-m mark ! --mark 0x4000/0x4000 -j RETURN"},
	{rule: "-m comment --comment imds -j DROP"},
	{rule: "-m statistic --mode random --probability 0.50000000000 -j DROP"},
	{rule: "-m limit --limit 5/sec -j DROP"},
	{rule: "-d 169.254.169.254/32 -p tcp -j DNAT --to-destination 10.0.0.1:8080", table: "nat", undecoded: true},
	{rule: "-d 169.254.169.254/32 -p tcp -j DNAT --to-destination 169.254.169.254:80", table: "nat", undecoded: true},
	{rule: "-j MASQUERADE --random-fully", table: "nat"},
	{rule: "-d 169.254.169.254/32 -p tcp -j REDIRECT --to-ports 8080", table: "nat"},
	{rule: "-j CT --notrack", table: "raw"},
	{rule: "-d 169.254.169.254/32 -m owner --uid-owner 0 -j ACCEPT", undecoded: true},
	{rule: "-m owner ! --uid-owner 1000 -j DROP", undecoded: true},
	{rule: "-p tcp -m multiport --dports 80,443 -j DROP", undecoded: true},
	{rule: "-p tcp -m tcp --dport 1000:2000 -j DROP", undecoded: true},
	{rule: "-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j DROP", undecoded: true},
	{rule: "-m iprange --dst-range 169.254.169.250-169.254.169.255 -j DROP", undecoded: true},
	{rule: "-m conntrack --ctstate NEW --ctproto tcp -j DROP", undecoded: true},
	{rule: "-m pkttype --pkt-type unicast -j DROP", undecoded: true},
	{rule: "-f -j DROP", undecoded: true},
}

// xtCorpus6 adds what differs for ip6tables.
var xtCorpus6 = []xtCase{
	{rule: "-d fd00:ec2::254/128 -j DROP"},
	{rule: "-d fd00::/8 -j DROP"},
	{rule: "-d fd00:ec2::/64 -p tcp -m tcp --dport 80 -j REJECT"},
	{rule: "-d fd00:ec2::250/127 -j DROP"},
	{rule: "-d 2600:1f18::/32 -j DROP"},
	{rule: "! -d fd00:ec2::254/128 -j DROP"},
	{rule: "-s 2600:1f18::/32 -j DROP"},
	{rule: "-p ipv6-icmp -j DROP"},
	{rule: "-p tcp -m tcp --dport 80 -j DROP"},
	{rule: "-m addrtype --dst-type LOCAL -j USER"},
	{rule: "-j ACCEPT"},
}

// xtProbePackets are the packets the conditions are compared on: each traffic class, the
// IMDS address local or not or unknown, the route's interface known or not.
func xtProbePackets(v6 bool) []packet {
	base := ec2Packets["ipv4"]
	if v6 {
		base = ec2Packets["ipv6"]
	}
	var out []packet
	for cl := range numClasses {
		for _, local := range []struct{ known, local bool }{{true, false}, {true, true}, {false, false}} {
			for _, oif := range []string{"eth0", "lo", ""} {
				p := base
				p.class, p.dstKnown, p.dstLocal, p.oif = cl, local.known, local.local, oif
				out = append(out, p)
				if oif == "eth0" {
					p.src = netip.Addr{}
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// ruleOutcomes is what a rule's conditions give for each packet.
func ruleOutcomes(r *fwRule, packets []packet) []outcome {
	var out []outcome
	for _, p := range packets {
		o := all
		for _, c := range r.conds {
			o = and(o, c(&p))
		}
		out = append(out, o)
	}
	return out
}

// TestNetlinkDecodesAsText loads each corpus rule with iptables-nft and checks that what
// the netlink decoder makes of the kernel's expressions is what parseIptablesRule makes of
// iptables-nft's text: the same outcome for every probe packet, the same verdict and
// target, the same exclusion, or no decode where one is not expected.
func TestNetlinkDecodesAsText(t *testing.T) {
	if !inNetns(t, "-test.run") {
		return
	}
	for _, fam := range []struct {
		family, bin string
		nfproto     uint8
		corpus      []xtCase
	}{
		{"ipv4", "iptables-nft", unix.NFPROTO_IPV4, xtCorpus},
		{"ipv6", "ip6tables-nft", unix.NFPROTO_IPV6, append(xtCorpus6, xtCorpus[:10]...)},
	} {
		for _, table := range []string{"filter", "nat", "raw"} {
			var corpus []xtCase
			for _, c := range fam.corpus {
				if c.table == table || c.table == "" && table == "filter" {
					corpus = append(corpus, c)
				}
			}
			if len(corpus) > 0 {
				t.Run(fam.family+"/"+table, func(t *testing.T) { compareDecodes(t, fam.bin, fam.nfproto, table, corpus) })
			}
		}
	}
}

// compareDecodes loads corpus into chain TEST of table and compares the netlink decode of
// each rule with the parse of its text.
func compareDecodes(t *testing.T, bin string, nfproto uint8, table string, corpus []xtCase) {
	v6 := nfproto == unix.NFPROTO_IPV6
	var restore strings.Builder
	fmt.Fprintf(&restore, "*%s\n:TEST - [0:0]\n:USER - [0:0]\n", table)
	for _, c := range corpus {
		fmt.Fprintf(&restore, "-A TEST %s\n", c.rule)
	}
	restore.WriteString("COMMIT\n")
	cmd := exec.Command(bin+"-restore", "--noflush")
	cmd.Stdin = strings.NewReader(restore.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s-restore: %v: %s", bin, err, out)
	}
	text, err := runTool(context.Background(), bin, "-t", table, "-S", "TEST")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, "-A TEST ") {
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	type decoded struct {
		r            *fwRule
		excluded, ok bool
	}
	var got []decoded
	dec := newXtDecoder(v6)
	err = nftChainRules(nfproto, table, "TEST", func(exprs []byte) {
		r, excluded, ok := dec.decode(exprs)
		got = append(got, decoded{r, excluded, ok})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(corpus) || len(lines) != len(corpus) {
		t.Fatalf("%d rules decoded, %d printed, %d loaded", len(got), len(lines), len(corpus))
	}
	packets := xtProbePackets(v6)
	for i, c := range corpus {
		g, line := got[i], lines[i]
		switch {
		case !g.ok && !c.undecoded:
			t.Errorf("%s: not decoded", line)
			continue
		case !g.ok:
			continue
		case c.undecoded:
			t.Errorf("%s: decoded, want it left to the text reader", line)
			continue
		}
		if want := excludesIMDS(line, v6); g.excluded != want {
			t.Errorf("%s: excluded = %v, text says %v", line, g.excluded, want)
			continue
		}
		if g.excluded {
			continue
		}
		words, err := SplitWords(line)
		if err != nil {
			t.Fatal(err)
		}
		want := parseIptablesRule(words[2:], v6, testUsers)
		if g.r.verdict != want.verdict || g.r.target != want.target || g.r.narrows != want.narrows ||
			g.r.uncertainVerdict != want.uncertainVerdict || g.r.owner != want.owner {
			t.Errorf("%s: verdict %d target %q narrows %v uncertain %v owner %v; text: %d %q %v %v %v", line,
				g.r.verdict, g.r.target, g.r.narrows, g.r.uncertainVerdict, g.r.owner,
				want.verdict, want.target, want.narrows, want.uncertainVerdict, want.owner)
		}
		gotO, wantO := ruleOutcomes(g.r, packets), ruleOutcomes(want, packets)
		for j := range packets {
			if gotO[j] != wantO[j] {
				t.Errorf("%s: packet %+v: outcome %d, text gives %d", line, packets[j], gotO[j], wantO[j])
				break
			}
		}
	}
}
