package remediate

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/facts/firewall"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/tests/tree"
	"github.com/zclconf/go-cty/cty"
)

// Where firewall_allow's line goes in each kind of file, and what it says when the file
// can't take it.
func TestFirewallAllowPlanFile(t *testing.T) {
	const rules = "*filter\n:OUTPUT DROP [0:0]\n-A OUTPUT -o lo -j ACCEPT\n-A OUTPUT -j DROP\nCOMMIT\n*nat\nCOMMIT\n"
	const conf = "table inet filter {\n  chain output {\n    type filter hook output priority 0; policy drop;\n    oifname \"lo\" accept\n  }\n  chain other {\n    ip daddr 1.1.1.1 drop\n  }\n}\n"
	const confEmpty = "table inet filter {\n  chain output {\n    type filter hook output priority 0; policy drop;\n  }\n}\n"
	root := t.TempDir()
	p := paths.New(root)
	tree.Write(t, root, map[string]string{paths.IptablesRulesV4: rules, "/etc/nftables.conf": conf, "/etc/sysconfig/nftables.conf": confEmpty})
	ipt := firewallDeleteData{Backend: "nft", Family: "ipv4", Table: "filter", Chain: "OUTPUT"}
	nft := firewallDeleteData{Backend: "nftables", Family: "ipv4", Table: "inet filter", Chain: "output"}
	accept := "-A OUTPUT -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -m comment --comment imdsmend -j ACCEPT\n"
	nftAccept := "ip daddr 169.254.169.254 tcp dport 80 accept comment \"imdsmend\"\n"
	tests := []struct {
		name   string
		rule   firewallDeleteData
		spec   string
		src    firewall.Source
		after  string // the file after the edit
		note   string
		detail string
		uid    *uint32
	}{
		{"iptables policy: before COMMIT", ipt, "-P OUTPUT DROP", firewall.Source{FrontEnd: firewall.FrontEndNetfilterPersistent, File: paths.IptablesRulesV4, Line: 2},
			strings.Replace(rules, "-A OUTPUT -j DROP\nCOMMIT\n", "-A OUTPUT -j DROP\n"+accept+"COMMIT\n", 1), "", "iptables-nft -t filter -A OUTPUT -d 169.254.169.254/32", nil},
		{"iptables rule: before its line", ipt, "-j DROP", firewall.Source{FrontEnd: firewall.FrontEndNetfilterPersistent, File: paths.IptablesRulesV4, Line: 4},
			strings.Replace(rules, "-A OUTPUT -j DROP\n", accept+"-A OUTPUT -j DROP\n", 1), "", "iptables-nft -t filter -I OUTPUT 2 ", nil},
		{"nft policy: after the chain's last rule", nft, "-P output DROP", firewall.Source{FrontEnd: firewall.FrontEndNftables, File: "/etc/nftables.conf", Line: 3},
			strings.Replace(conf, "    oifname \"lo\" accept\n", "    oifname \"lo\" accept\n    "+nftAccept, 1), "", "nft add rule inet filter output ip daddr 169.254.169.254", nil},
		{"nft policy of an empty chain: after the policy", nft, "-P output DROP", firewall.Source{FrontEnd: firewall.FrontEndNftables, File: "/etc/sysconfig/nftables.conf", Line: 3},
			strings.Replace(confEmpty, "policy drop;\n", "policy drop;\n    "+nftAccept, 1), "", "", nil},
		{"UFW: live only, and says so", ipt, "-P OUTPUT DROP", firewall.Source{FrontEnd: firewall.FrontEndUFW, File: paths.UFWDefaults, Line: 7},
			"", "ufw can't match a uid, so the ACCEPT is added live only: the next ufw reload or boot removes it", "--uid-owner 0", new(uint32)},
		{"a file that lost the line", ipt, "-j DROP", firewall.Source{FrontEnd: firewall.FrontEndNetfilterPersistent, File: paths.IptablesRulesV4, Line: 40},
			"", "no line 40", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.rule
			r.Spec = tt.spec
			c, err := planAllow(p, r, 2, tt.src, tt.uid)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(c.Detail, tt.note) || !strings.Contains(c.Detail, tt.detail) {
				t.Errorf("detail %q, want %q and %q", c.Detail, tt.note, tt.detail)
			}
			var d firewallAllowData
			if err := json.Unmarshal(c.Data, &d); err != nil {
				t.Fatal(err)
			}
			if tt.after == "" {
				if d.File != nil {
					t.Errorf("planned a file edit %+v, want none", d.File)
				}
				return
			}
			if d.File == nil {
				t.Fatal("no file edit planned")
			}
			orig, _ := os.ReadFile(p.File(tt.src.File))
			if _, err := d.File.apply(p); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(p.File(tt.src.File))
			if string(got) != tt.after {
				t.Errorf("file after the edit:\n%s\nwant:\n%s", got, tt.after)
			}
			if _, err := d.File.undo(p); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(p.File(tt.src.File)); string(got) != string(orig) {
				t.Errorf("undo left:\n%s", got)
			}
		})
	}
}

// One ACCEPT per table and family, before the first rule given there; uids narrow it.
func TestFirewallAllowPlan(t *testing.T) {
	rule := func(family, chain, spec string) cty.Value {
		return cty.ObjectVal(map[string]cty.Value{"backend": cty.StringVal("nft"), "family": cty.StringVal(family),
			"table": cty.StringVal("filter"), "chain": cty.StringVal(chain), "spec": cty.StringVal(spec), "handle": cty.NullVal(cty.Number)})
	}
	args := cty.ObjectVal(map[string]cty.Value{
		"rules": cty.ListVal([]cty.Value{rule("ipv4", "OUTPUT", "-j DROP"), rule("ipv4", "OUTPUT", "-P OUTPUT DROP"), rule("ipv6", "OUTPUT", "-P OUTPUT DROP")}),
		"uids":  cty.ListVal([]cty.Value{cty.NumberIntVal(0), cty.NumberIntVal(1000)}),
	})
	changes, err := FirewallAllow{}.Plan(context.Background(), nil, args)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"nft/ipv4/filter/OUTPUT: -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -m owner --uid-owner 0 -m comment --comment imdsmend -j ACCEPT",
		"nft/ipv4/filter/OUTPUT: -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -m owner --uid-owner 1000 -m comment --comment imdsmend -j ACCEPT",
		"nft/ipv6/filter/OUTPUT: -d fd00:ec2::254/128 -p tcp -m tcp --dport 80 -m owner --uid-owner 0 -m comment --comment imdsmend -j ACCEPT",
		"nft/ipv6/filter/OUTPUT: -d fd00:ec2::254/128 -p tcp -m tcp --dport 80 -m owner --uid-owner 1000 -m comment --comment imdsmend -j ACCEPT",
	}
	if len(changes) != len(want) {
		t.Fatalf("%d changes, want %d: %+v", len(changes), len(want), changes)
	}
	for i, c := range changes {
		if c.Target != want[i] {
			t.Errorf("change %d: %q, want %q", i, c.Target, want[i])
		}
	}
	if !strings.Contains(changes[0].Detail, "-I OUTPUT 1 ") {
		t.Errorf("the IPv4 ACCEPT does not go before the first rule given: %s", changes[0].Detail)
	}
}
