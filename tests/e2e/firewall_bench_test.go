package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/tests/harness"
)

// BenchmarkFirewallFacts measures the firewall probe on a namespace holding 1,000 rules that
// don't concern IMDS, per backend, as the probe's own duration_ms in `imdsmend facts`
// (reported as firewall-ms/op; ns/op is the whole process). "none" has no rules at all.
func BenchmarkFirewallFacts(b *testing.B) {
	for _, bed := range []struct {
		name string
		// tool restores rules (with args) into the namespace; none for "none".
		tool, rules string
		args        []string
	}{
		{name: "none"},
		{name: "iptables-nft", tool: "iptables-nft-restore", rules: unrelatedIptables()},
		{name: "iptables-legacy", tool: "iptables-legacy-restore", rules: unrelatedIptables()},
		{name: "nftables", tool: "nft", rules: unrelatedNft(), args: []string{"-f", "-"}},
	} {
		b.Run(bed.name, func(b *testing.B) {
			ns := newNamespace(b)
			if bed.tool != "" {
				restore(b, ns, bed.tool, bed.rules, bed.args...)
			}
			r := newRun(b, ns)
			var total float64
			for b.Loop() {
				out, err := r.direct("facts", "--format", "json")
				if err != nil {
					b.Fatalf("imdsmend facts: %v", err)
				}
				var f facts.Facts
				if err := json.Unmarshal(out, &f); err != nil || f.Firewall == nil || len(f.Firewall.Rules) != 0 {
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
func restore(b *testing.B, ns *harness.Namespace, tool, rules string, args ...string) {
	b.Helper()
	cmd := ns.Command(testContext(b), tool, args...)
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", tool, err, out)
	}
}
