package firewall

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// kubeNat is a kube-proxy nat table as `iptables -t nat -S CHAIN` prints each chain.
var kubeNat = map[string]string{
	"OUTPUT": "-P OUTPUT ACCEPT\n-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n",
	"KUBE-SERVICES": `-N KUBE-SERVICES
-A KUBE-SERVICES -d 10.100.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y
-A KUBE-SERVICES -d 10.100.0.2/32 -p tcp -m comment --comment "ns/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-WEB
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
`,
	"KUBE-NODEPORTS":            "-N KUBE-NODEPORTS\n",
	"KUBE-SVC-NPX46M4PTMTKRN6Y": "-N KUBE-SVC-NPX46M4PTMTKRN6Y\n-A KUBE-SVC-NPX46M4PTMTKRN6Y -j DROP\n",
	"KUBE-SVC-WEB":              "-N KUBE-SVC-WEB\n-A KUBE-SVC-WEB -j DROP\n",
	"POSTROUTING":               "-P POSTROUTING ACCEPT\n-A POSTROUTING -j KUBE-POSTROUTING\n",
	"KUBE-POSTROUTING":          "-N KUBE-POSTROUTING\n-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n-A KUBE-POSTROUTING -j MASQUERADE --random-fully\n",
}

// TestLazyWalkReadsOnlyIMDSPath: the walk reads a chain only when a jump to it may match
// IMDS's traffic; the service chains, whose jumps name other addresses, are never read,
// and MASQUERADE (no chain) costs nothing. What it read is then quiet.
func TestLazyWalkReadsOnlyIMDSPath(t *testing.T) {
	for _, tt := range []struct {
		name    string
		packets map[string]packet
		want    []string
	}{
		// IMDS on lo: the addrtype LOCAL jump to KUBE-NODEPORTS matches.
		{"local", nsPackets, []string{"KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING"}},
		{"ec2", ec2Packets, []string{"KUBE-SERVICES", "KUBE-POSTROUTING"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var read []string
			tbl := &fwTable{backend: "nft", family: "ipv4", name: "nat", chains: map[string]*fwChain{}}
			for _, base := range []string{"OUTPUT", "POSTROUTING"} {
				c, err := parseChain(kubeNat[base], base, "ipv4", testUsers)
				if err != nil {
					t.Fatal(err)
				}
				tbl.chains[base], tbl.order = c, append(tbl.order, c)
			}
			tbl.load = func(name string) *fwChain {
				out, ok := kubeNat[name]
				if !ok {
					return nil
				}
				read = append(read, name)
				c, err := parseChain(out, name, "ipv4", testUsers)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			if !walkQuiet([]*fwTable{tbl}, tt.packets) {
				t.Error("walk not quiet")
			}
			if diff := cmp.Diff(tt.want, read); diff != "" {
				t.Errorf("chains read (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLazyWalkNotQuiet: a blocker on IMDS's path, or a chain that can't be read, sends the
// caller to the full read.
func TestLazyWalkNotQuiet(t *testing.T) {
	for _, tt := range []struct {
		name, chain string
		failLoad    bool
	}{
		{name: "dnat", chain: "-N KUBE-SERVICES\n-A KUBE-SERVICES -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.244.1.1:8080\n"},
		{name: "unreadable", failLoad: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := parseChain(kubeNat["OUTPUT"], "OUTPUT", "ipv4", testUsers)
			if err != nil {
				t.Fatal(err)
			}
			tbl := &fwTable{backend: "nft", family: "ipv4", name: "nat", chains: map[string]*fwChain{"OUTPUT": out}, order: []*fwChain{out}}
			tbl.load = func(name string) *fwChain {
				if tt.failLoad {
					tbl.loadFailed = true
					return nil
				}
				c, err := parseChain(tt.chain, name, "ipv4", testUsers)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			if walkQuiet([]*fwTable{tbl}, nsPackets) {
				t.Error("walk quiet, want the full read")
			}
		})
	}
}

func TestParseChain(t *testing.T) {
	for _, tt := range []struct {
		name, out, chain string
		policy           int
		specs            []string
		err              string
	}{
		{name: "base", chain: "OUTPUT", out: "-P OUTPUT DROP\n-A OUTPUT -d 169.254.169.254/32 -m comment --comment \"a \\\"b\\\"\" -j ACCEPT\n",
			policy: vDrop, specs: []string{`-d 169.254.169.254/32 -m comment --comment "a \"b\"" -j ACCEPT`}},
		{name: "user", chain: "X", out: "-N X\n-A X -j RETURN\n-A X -p tcp -j DROP\n", specs: []string{"-j RETURN", "-p tcp -j DROP"}},
		// Rules whose destination leaves IMDS out are not even parsed (issue 16); a
		// negated one, or a -d only inside a comment, is.
		{name: "kube-services", chain: "KUBE-SERVICES", out: "-N KUBE-SERVICES\n" +
			"-A KUBE-SERVICES -d 10.100.0.1/32 -p tcp -m comment --comment \"default/kubernetes:https cluster IP\" -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y\n" +
			"-A KUBE-SERVICES ! -d 10.0.0.0/8 -j DROP\n" +
			"-A KUBE-SERVICES -m comment --comment \"x -d 10.0.0.1/32\" -j DROP\n" +
			"-A KUBE-SERVICES -d fd00::1/128 -j DROP\n" +
			"-A KUBE-SERVICES -d 169.254.0.0/16 -j KUBE-IMDS\n",
			specs: []string{"! -d 10.0.0.0/8 -j DROP", `-m comment --comment "x -d 10.0.0.1/32" -j DROP`, "-d 169.254.0.0/16 -j KUBE-IMDS"}},
		{name: "other chain", chain: "X", out: "-N X\n-A Y -j DROP\n", err: "undeclared chain Y"},
		{name: "garbage", chain: "X", out: "-N X\nwhat\n", err: `unexpected "what"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseChain(tt.out, tt.chain, "ipv4", testUsers)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var specs []string
			for i, r := range c.rules {
				if r.pos != i+1 || r.chain != c {
					t.Errorf("rule %d: pos %d chain %p", i, r.pos, r.chain)
				}
				specs = append(specs, r.spec)
			}
			if c.policy != tt.policy || !slices.Equal(specs, tt.specs) {
				t.Errorf("policy %d specs %q, want %d %q", c.policy, specs, tt.policy, tt.specs)
			}
		})
	}
}

// BenchmarkParseKubeServices parses a KUBE-SERVICES chain of 4,000 services as
// `iptables -t nat -S KUBE-SERVICES` prints it (docs/bench.md).
func BenchmarkParseKubeServices(b *testing.B) {
	var out strings.Builder
	out.WriteString("-N KUBE-SERVICES\n")
	for i := range 4000 {
		fmt.Fprintf(&out, "-A KUBE-SERVICES -d 10.100.%d.%d/32 -p tcp -m comment --comment \"ns%d/svc%d:http cluster IP\" -m tcp --dport 80 -j KUBE-SVC-%016X\n", (i+1)/256, (i+1)%256, i%50, i, i)
	}
	out.WriteString("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n")
	text := out.String()
	for b.Loop() {
		if _, err := parseChain(text, "KUBE-SERVICES", "ipv4", testUsers); err != nil {
			b.Fatal(err)
		}
	}
}
