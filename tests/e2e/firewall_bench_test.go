package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/facts"
)

// BenchmarkFirewallFacts measures the firewall probe on a namespace holding 1,000 rules that
// don't concern IMDS, per backend, as the probe's own duration_ms in `imdsmend facts`
// (reported as firewall-ms/op; ns/op is the whole process). "none" has no rules at all.
func BenchmarkFirewallFacts(b *testing.B) {
	for _, bed := range []struct {
		name string
		load func(b *testing.B, ns string)
	}{
		{"none", func(*testing.B, string) {}},
		{"iptables-nft", func(b *testing.B, ns string) { restore(b, ns, "iptables-nft-restore", unrelatedIptables()) }},
		{"iptables-legacy", func(b *testing.B, ns string) { restore(b, ns, "iptables-legacy-restore", unrelatedIptables()) }},
		{"nftables", func(b *testing.B, ns string) { restore(b, ns, "nft", unrelatedNft(), "-f", "-") }},
	} {
		b.Run(bed.name, func(b *testing.B) {
			ns := newNamespace(b)
			bed.load(b, ns.Name)
			args := newRun(b, ns).args("facts", "--format", "json")
			env := append(os.Environ(), imdsmendEnv...)
			var total float64
			for b.Loop() {
				var out bytes.Buffer
				err := ns.Do(func() error {
					cmd := exec.Command(bins.Imdsmend, args...)
					cmd.Env, cmd.Stdout = env, &out
					return cmd.Run()
				})
				if err != nil {
					b.Fatalf("imdsmend facts: %v", err)
				}
				var f facts.Facts
				if err := json.Unmarshal(out.Bytes(), &f); err != nil || f.Firewall == nil || len(f.Firewall.Rules) != 0 {
					b.Fatalf("firewall facts: %v, %+v, probe %+v", err, f.Firewall, f.Probes["firewall"])
				}
				total += f.Probes["firewall"].DurationMS
			}
			b.ReportMetric(total/float64(b.N), "firewall-ms/op")
		})
	}
}

// unrelatedIptables is 1,000 filter rules for other destinations: half in OUTPUT, half in a
// user chain OUTPUT jumps to, with comments.
func unrelatedIptables() string {
	var s strings.Builder
	s.WriteString("*filter\n:OUTPUT ACCEPT [0:0]\n:EGRESS - [0:0]\n-A OUTPUT -j EGRESS\n")
	for i := range 500 {
		fmt.Fprintf(&s, "-A OUTPUT -d 10.%d.%d.0/24 -p tcp -m tcp --dport %d -j ACCEPT\n", i/250, i%250, 1000+i)
		fmt.Fprintf(&s, "-A EGRESS -s 192.168.%d.%d/32 -m comment --comment \"host %d\" -j DROP\n", i/250, i%250, i)
	}
	s.WriteString("COMMIT\n")
	return s.String()
}

// unrelatedNft is the same in a native inet table.
func unrelatedNft() string {
	var s strings.Builder
	s.WriteString("table inet bench {\n chain out {\n  type filter hook output priority 0; policy accept;\n  jump egress\n")
	for i := range 500 {
		fmt.Fprintf(&s, "  ip daddr 10.%d.%d.0/24 tcp dport %d accept\n", i/250, i%250, 1000+i)
	}
	s.WriteString(" }\n chain egress {\n")
	for i := range 500 {
		fmt.Fprintf(&s, "  ip saddr 192.168.%d.%d counter drop comment \"host %d\"\n", i/250, i%250, i)
	}
	s.WriteString(" }\n}\n")
	return s.String()
}

// restore feeds rules to a restore tool inside the namespace.
func restore(b *testing.B, ns, tool, rules string, args ...string) {
	b.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, tool}, args...)...)
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", tool, err, out)
	}
}
