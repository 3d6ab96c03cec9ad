package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/tests/harness"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
)

// The issue 16 node: kube-proxy's layouts for 4,000 services of one endpoint each
// (iptables: 20,000 nat rules, 400 filter REJECTs; nftables: 4,000 service-ips elements,
// 8,000 chains, 400 services without endpoints). Other sizes:
// go test ./tests/e2e -run KubeProxy -args -kube-services 20000 -kube-endpoints 3
var (
	kubeServices  = flag.Int("kube-services", 4000, "services in the generated kube-proxy layouts")
	kubeEndpoints = flag.Int("kube-endpoints", 1, "endpoints per service in the generated kube-proxy layouts")
)

func kubeNode() harness.KubeProxy {
	return harness.KubeProxy{Services: *kubeServices, Endpoints: *kubeEndpoints}
}

// hiddenEgress is a user chain OUTPUT reaches, with 2,000 rules for other destinations
// before a REJECT of IMDS.
func hiddenEgress() string {
	var s strings.Builder
	s.WriteString("*filter\n:EGRESS-POLICY - [0:0]\n-A OUTPUT -j EGRESS-POLICY\n")
	for i := range 2000 {
		fmt.Fprintf(&s, "-A EGRESS-POLICY -d 172.16.%d.%d/32 -p tcp -m comment --comment \"deny %d\" -j REJECT --reject-with icmp-port-unreachable\n", i/250, i%250, i)
	}
	s.WriteString("-A EGRESS-POLICY -d 169.254.169.254/32 -p tcp -j REJECT --reject-with icmp-port-unreachable\nCOMMIT\n")
	return s.String()
}

// hiddenEgressNft is the same in a native table, the 2,000 destinations a named set
// looked up first.
func hiddenEgressNft() string {
	var s strings.Builder
	s.WriteString("table inet egress {\n set denied { type ipv4_addr; elements = { ")
	for i := range 2000 {
		if i > 0 {
			s.WriteString(", ")
		}
		fmt.Fprintf(&s, "172.16.%d.%d", i/250, i%250)
	}
	s.WriteString(" } }\n chain output { type filter hook output priority 0; policy accept;\n  jump egress-policy\n }\n chain egress-policy {\n  ip daddr @denied reject\n")
	for i := range 2000 {
		fmt.Fprintf(&s, "  ip daddr 172.17.%d.%d tcp dport 443 reject comment \"deny %d\"\n", i/250, i%250, i)
	}
	s.WriteString("  ip daddr 169.254.169.254 tcp dport 80 reject\n }\n}\n")
	return s.String()
}

// externalIMDS is a Service whose externalIPs holds 169.254.169.254 (CVE-2020-8554's
// shape), as kube-proxy's nftables mode writes it: an element of service-ips sends
// IMDS's traffic to the Service's external chain, which goes to its service chain, whose
// numgen picks the endpoint chain that DNATs to the pod.
const externalIMDS = `table ip kube-proxy {
 chain endpoint-4QYW3DBI-kube-system/fake-imds/tcp/http__10.244.7.7/8080 {
  ip saddr 10.244.7.7 jump mark-for-masquerade
  meta l4proto tcp dnat to 10.244.7.7:8080
 }
 chain service-JQ3RL5VM-kube-system/fake-imds/tcp/http {
  ip daddr 10.100.255.250 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
  numgen random mod 1 vmap { 0 : goto endpoint-4QYW3DBI-kube-system/fake-imds/tcp/http__10.244.7.7/8080 }
 }
 chain external-JQ3RL5VM-kube-system/fake-imds/tcp/http {
  jump mark-for-masquerade
  goto service-JQ3RL5VM-kube-system/fake-imds/tcp/http
 }
}
add element ip kube-proxy cluster-ips { 10.100.255.250 }
add element ip kube-proxy service-ips { 10.100.255.250 . tcp . 80 : goto service-JQ3RL5VM-kube-system/fake-imds/tcp/http, 169.254.169.254 . tcp . 80 : goto external-JQ3RL5VM-kube-system/fake-imds/tcp/http }
`

// TestFirewallKubeProxy: among kube-proxy's rules, in iptables mode and in nftables mode,
// a healthy node has no firewall fact and no finding, and a blocker hidden among them is
// found where it sits, with the path that leads to it.
func TestFirewallKubeProxy(t *testing.T) {
	type found struct {
		Table, Chain, Spec, Effect string
		Broad                      bool
		LeadsTo                    string
	}
	tests := []struct {
		name string
		mode string // kube-proxy's: iptables or nft
		ipv6 bool   // a dual-stack node: the nftables layout's ip6 table too
		// extra is added after the layout (iptables-restore --noflush, or nft -f)
		extra string
		want  []found
	}{
		{name: "healthy", mode: "iptables"},
		{
			name:  "reject-in-user-chain",
			mode:  "iptables",
			extra: hiddenEgress(),
			want:  []found{{"filter", "EGRESS-POLICY", "-d 169.254.169.254/32 -p tcp -j REJECT --reject-with icmp-port-unreachable", "reject", false, ""}},
		},
		{
			name:  "dnat-in-kube-services",
			mode:  "iptables",
			extra: "*nat\n-I KUBE-SERVICES 2000 -d 169.254.169.254/32 -p tcp -m comment --comment \"kube-system/fake-imds:http cluster IP\" -m tcp --dport 80 -j DNAT --to-destination 10.244.7.7:8080\nCOMMIT\n",
			want:  []found{{"nat", "KUBE-SERVICES", `-d 169.254.169.254/32 -p tcp -m comment --comment "kube-system/fake-imds:http cluster IP" -m tcp --dport 80 -j DNAT --to-destination 10.244.7.7:8080`, "dnat", false, ""}},
		},
		{name: "healthy", mode: "nft"},
		{name: "healthy dual-stack", mode: "nft", ipv6: true},
		{
			name:  "reject-in-user-chain",
			mode:  "nft",
			extra: hiddenEgressNft(),
			want:  []found{{"inet egress", "egress-policy", "ip daddr 169.254.169.254 tcp dport 80 reject with icmp port-unreachable", "reject", false, ""}},
		},
		{
			// The endpoint chain's DNAT also serves the Service's ClusterIP, so it is broad:
			// the goto of the external chain, which only IMDS's element reaches, is the rule
			// to delete.
			name:  "externalip-dnat",
			mode:  "nft",
			extra: externalIMDS,
			want: []found{
				{"ip kube-proxy", "external-JQ3RL5VM-kube-system/fake-imds/tcp/http", "goto service-JQ3RL5VM-kube-system/fake-imds/tcp/http", "dnat", false,
					"endpoint-4QYW3DBI-kube-system/fake-imds/tcp/http__10.244.7.7/8080: meta l4proto tcp dnat to 10.244.7.7:8080"},
				{"ip kube-proxy", "endpoint-4QYW3DBI-kube-system/fake-imds/tcp/http__10.244.7.7/8080", "meta l4proto tcp dnat to 10.244.7.7:8080", "dnat", true, ""},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.mode+"/"+tt.name, func(t *testing.T) {
			ctx := testContext(t)
			ns := newNamespace(t)
			serveSim(sim.FaultOK)(ctx, t, ns)
			node := kubeNode()
			node.IPv6 = tt.ipv6
			if err := node.Load(ctx, ns, tt.mode); err != nil {
				t.Fatal(err)
			}
			if tt.extra != "" {
				cmd := ns.Command(ctx, "iptables-restore", "--noflush")
				if tt.mode == "nft" {
					cmd = ns.Command(ctx, "nft", "-f", "-")
				}
				cmd.Stdin = strings.NewReader(tt.extra)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%s: %v\n%s", cmd.Args[0], err, out)
				}
			}
			r := newRun(t, ns)
			var env []string
			switch {
			case len(tt.want) == 0:
				// A healthy node is decided chain by chain over netlink (issue 16), without
				// dumping the 20,000 rules or running iptables or nft at all: they fail here.
				env = noRulesetTools(t)
			case tt.mode == "nft":
				// A rule to report sends the probe to nft's full listing, which takes
				// seconds on a loaded machine; the default bound is for a usual ruleset.
				r.dropIn("50-slow.hcl", "settings {\n  probe_timeout = \"50s\"\n}\n")
			}
			f := factsIn(ctx, t, ns, r, env)
			if f.Firewall == nil {
				t.Fatalf("no firewall facts: probe %+v", f.Probes["firewall"])
			}
			got := []found{}
			for _, fr := range f.Firewall.Rules {
				got = append(got, found{fr.Table, fr.Chain, fr.Spec, fr.Effect, fr.Broad, fr.LeadsTo})
				if !fr.Blocks || !fr.Certain {
					t.Errorf("rule %+v: want certain and blocking", fr)
				}
			}
			if diff := cmp.Diff(append([]found{}, tt.want...), got); diff != "" {
				t.Errorf("firewall rules (-want +got):\n%s", diff)
			}

			res, err := ns.Exec(ctx, env, bins.Imdsmend, r.args("check", "--format", "json")...)
			if err != nil {
				t.Fatal(err)
			}
			rep := decodeReport(t, "check", res)
			if len(tt.want) == 0 {
				if res.ExitCode != report.ExitHealthy || len(rep.Findings) != 0 || len(rep.Unknown) != 0 {
					t.Errorf("healthy node: exit %d, findings %+v, unknown %+v\n%s", res.ExitCode, rep.Findings, rep.Unknown, res.Stderr)
				}
				return
			}
			backend := "nft/ipv4/"
			if tt.mode == "nft" {
				backend = "nftables/ipv4/"
			}
			want := backend + tt.want[0].Table + "/" + tt.want[0].Chain + ": " + tt.want[0].Spec + " (deleted by apply"
			switch fb := blocksFinding(rep); {
			case fb == nil:
				t.Errorf("no firewall_blocks_imds finding\n%s", res.Stderr)
			case !strings.Contains(fb.Summary, want):
				t.Errorf("firewall_blocks_imds does not name the rule where it sits (%s):\n%s", want, fb.Summary)
			}
		})
	}
}

// noRulesetTools is an environment whose iptables-nft-save, iptables-nft, ip6tables-nft
// and nft (found on PATH) fail, so a run that dumps the ruleset or reads a chain as text
// fails its firewall probe.
func noRulesetTools(t *testing.T) []string {
	dir := t.TempDir()
	for _, tool := range []string{"iptables-nft-save", "iptables-nft", "ip6tables-nft", "nft"} {
		script := "#!/bin/sh\necho " + tool + " must not run >&2\nexit 1\n"
		if err := os.WriteFile(filepath.Join(dir, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"PATH=" + dir + ":" + os.Getenv("PATH")}
}

// BenchmarkKubeProxyCheck measures a healthy `imdsmend check` on kubeNode()'s rules against
// the ruleset's own dump alone in the same namespace (iptables-save for the iptables layout,
// nft list ruleset for the nftables one), each started from a thread inside it through
// GNU time: wall time per op, and the peak RSS of the largest process of the run
// (max-rss-MiB; imdsmend's readers included). time is in between because a process
// started straight from this one inherits its peak RSS across exec.
func BenchmarkKubeProxyCheck(b *testing.B) {
	for _, bed := range []struct{ mode, dump string }{{"iptables", "iptables-save"}, {"nft", "nft list ruleset"}} {
		for _, name := range []string{bed.dump, "check"} {
			b.Run(bed.mode+"/"+strings.Fields(name)[0], func(b *testing.B) {
				s, r := benchBed(b)
				if err := kubeNode().Load(testContext(b), r.ns, bed.mode); err != nil {
					b.Fatal(err)
				}
				// The nftables layout takes nft seconds to print: a check that falls back
				// to reading it whole is measured rather than cut off at the default bound.
				r.dropIn("50-slow.hcl", "settings {\n  probe_timeout = \"30s\"\n}\n")
				rssFile := filepath.Join(b.TempDir(), "rss")
				args := append([]string{"/usr/bin/time", "-f", "%M", "-o", rssFile}, strings.Fields(name)...)
				if name == "check" {
					args = append(args[:5], append([]string{bins.Imdsmend}, r.args("check", "--format", "json")...)...)
				}
				var runMS, rss float64
				for b.Loop() {
					cmd := exec.Command(args[0], args[1:]...)
					var out strings.Builder
					cmd.Env, cmd.Stdout = harness.Environ(), &out
					if err := r.ns.Do(cmd.Run); err != nil {
						b.Fatalf("%s: %v\n%s", name, err, out.String())
					}
					kib, err := os.ReadFile(rssFile)
					if err != nil {
						b.Fatal(err)
					}
					k, err := strconv.ParseFloat(strings.TrimSpace(string(kib)), 64)
					if err != nil {
						b.Fatalf("GNU time printed %q: %v", kib, err)
					}
					rss = max(rss, k/1024)
					if name == "check" {
						runMS += healthyRunMS(b, []byte(out.String()))
					}
				}
				b.ReportMetric(rss, "max-rss-MiB")
				if name == "check" {
					reportLoad(b, s, runMS)
				}
			})
		}
	}
}
