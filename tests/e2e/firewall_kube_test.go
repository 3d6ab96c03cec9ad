package e2e

import (
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

// kubeNode is the issue 16 node: kube-proxy's iptables layout for 4,000 services of one
// endpoint each (20,000 nat rules, 400 filter REJECTs).
var kubeNode = harness.KubeProxy{Services: 4000, Endpoints: 1}

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

// TestFirewallKubeProxy: among kube-proxy's rules a healthy node has no firewall fact and
// no finding, and a blocker hidden among them is found where it sits.
func TestFirewallKubeProxy(t *testing.T) {
	type found struct{ Table, Chain, Spec, Effect string }
	tests := []struct {
		name  string
		extra string // rules added with iptables-restore --noflush
		want  []found
	}{
		{name: "healthy"},
		{
			name:  "reject-in-user-chain",
			extra: hiddenEgress(),
			want:  []found{{"filter", "EGRESS-POLICY", "-d 169.254.169.254/32 -p tcp -j REJECT --reject-with icmp-port-unreachable", "reject"}},
		},
		{
			name:  "dnat-in-kube-services",
			extra: "*nat\n-I KUBE-SERVICES 2000 -d 169.254.169.254/32 -p tcp -m comment --comment \"kube-system/fake-imds:http cluster IP\" -m tcp --dport 80 -j DNAT --to-destination 10.244.7.7:8080\nCOMMIT\n",
			want:  []found{{"nat", "KUBE-SERVICES", `-d 169.254.169.254/32 -p tcp -m comment --comment "kube-system/fake-imds:http cluster IP" -m tcp --dport 80 -j DNAT --to-destination 10.244.7.7:8080`, "dnat"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			ns := newNamespace(t)
			serveSim(sim.FaultOK)(ctx, t, ns)
			if err := kubeNode.Load(ctx, ns, "iptables"); err != nil {
				t.Fatal(err)
			}
			if tt.extra != "" {
				cmd := ns.Command(ctx, "iptables-restore", "--noflush")
				cmd.Stdin = strings.NewReader(tt.extra)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("iptables-restore: %v\n%s", err, out)
				}
			}
			r := newRun(t, ns)
			var env []string
			if len(tt.want) == 0 {
				// A healthy node is decided chain by chain (issue 16), without dumping the
				// 20,000 rules: a dump fails here.
				env = noDump(t)
			}
			f := factsIn(ctx, t, ns, r, env)
			if f.Firewall == nil {
				t.Fatalf("no firewall facts: probe %+v", f.Probes["firewall"])
			}
			got := []found{}
			for _, fr := range f.Firewall.Rules {
				got = append(got, found{fr.Table, fr.Chain, fr.Spec, fr.Effect})
				if !fr.Blocks || !fr.Certain || fr.Broad {
					t.Errorf("rule %+v: want certain, blocking, narrow", fr)
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
			fb := blocksFinding(rep)
			if fb == nil || !strings.Contains(fb.Summary, "nft/ipv4/"+tt.want[0].Table+"/"+tt.want[0].Chain+": "+tt.want[0].Spec+" (deleted by apply)") {
				t.Errorf("firewall_blocks_imds %+v does not name the rule where it sits\n%s", fb, res.Stderr)
			}
		})
	}
}

// noDump is an environment whose iptables-nft-save fails, so a run that dumps the ruleset
// fails its firewall probe.
func noDump(t *testing.T) []string {
	dir := t.TempDir()
	script := "#!/bin/sh\necho iptables-nft-save must not run >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, "iptables-nft-save"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{"PATH=" + dir + ":" + os.Getenv("PATH")}
}

// BenchmarkKubeProxyCheck measures a healthy `imdsmend check` on kubeNode's rules against
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
				if err := kubeNode.Load(testContext(b), r.ns, bed.mode); err != nil {
					b.Fatal(err)
				}
				// The nftables layout takes nft seconds to print: measure it rather than
				// stop at the default probe bound.
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
