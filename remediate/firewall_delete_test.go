package remediate

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// fakeTools puts empty executables with these names first on PATH, so planning finds the
// iptables commands without them being installed (or run).
func fakeTools(t *testing.T, names ...string) {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\nexit 99\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
}

// decodeArgs evaluates a remediate block body as the policy would.
func decodeArgs(t *testing.T, spec hcldec.Spec, body string) cty.Value {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(body), "test.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	v, diags := hcldec.Decode(f.Body, spec, nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return v
}

func TestFirewallDeletePlan(t *testing.T) {
	tests := []struct {
		name    string
		tools   []string
		body    string
		want    []string // target | detail | data
		wantErr string
	}{
		{
			name:  "one rule, named by hand with only the required attributes",
			tools: []string{"iptables-nft"},
			body:  `rules = [{backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", spec = "-d 169.254.169.254/32 -p tcp -j REJECT --reject-with icmp-port-unreachable"}]`,
			want: []string{
				`nft/ipv4/filter/OUTPUT: -d 169.254.169.254/32 -p tcp -j REJECT --reject-with icmp-port-unreachable | iptables-nft -t filter -D OUTPUT -d 169.254.169.254/32 -p tcp -j REJECT --reject-with icmp-port-unreachable | {"backend":"nft","family":"ipv4","table":"filter","chain":"OUTPUT","spec":"-d 169.254.169.254/32 -p tcp -j REJECT --reject-with icmp-port-unreachable","copies":1}`,
			},
		},
		{
			name:  "identical rules in one chain are one change deleting both",
			tools: []string{"iptables-legacy"},
			body: `rules = [
				{backend = "legacy", family = "ipv4", table = "filter", chain = "OUTPUT", spec = "-d 169.254.169.254/32 -j DROP", position = 1},
				{backend = "legacy", family = "ipv4", table = "filter", chain = "OUTPUT", spec = "-d 169.254.169.254/32 -j DROP", position = 3},
			]`,
			want: []string{
				`legacy/ipv4/filter/OUTPUT: -d 169.254.169.254/32 -j DROP | iptables-legacy -t filter -D OUTPUT -d 169.254.169.254/32 -j DROP | {"backend":"legacy","family":"ipv4","table":"filter","chain":"OUTPUT","spec":"-d 169.254.169.254/32 -j DROP","copies":2}`,
			},
		},
		{
			name:  "a comment with quotes and spaces stays one word",
			tools: []string{"ip6tables-nft"},
			body:  `rules = [{backend = "nft", family = "ipv6", table = "mangle", chain = "OUTPUT", spec = "-m comment --comment \"it's \\\"x\\\"\" -j DROP"}]`,
			want: []string{
				`nft/ipv6/mangle/OUTPUT: -m comment --comment "it's \"x\"" -j DROP | ip6tables-nft -t mangle -D OUTPUT -m comment --comment 'it'\''s "x"' -j DROP | {"backend":"nft","family":"ipv6","table":"mangle","chain":"OUTPUT","spec":"-m comment --comment \"it's \\\"x\\\"\" -j DROP","copies":1}`,
			},
		},
		{
			name:  "old legacy-only iptables has no suffixed name",
			tools: []string{"iptables"},
			body:  `rules = [{backend = "legacy", family = "ipv4", table = "nat", chain = "OUTPUT", spec = "-d 169.254.169.254/32 -p tcp -j DNAT --to-destination 127.0.0.1:9"}]`,
			want: []string{
				`legacy/ipv4/nat/OUTPUT: -d 169.254.169.254/32 -p tcp -j DNAT --to-destination 127.0.0.1:9 | iptables -t nat -D OUTPUT -d 169.254.169.254/32 -p tcp -j DNAT --to-destination 127.0.0.1:9 | {"backend":"legacy","family":"ipv4","table":"nat","chain":"OUTPUT","spec":"-d 169.254.169.254/32 -p tcp -j DNAT --to-destination 127.0.0.1:9","copies":1}`,
			},
		},
		{
			name: "an inet rule reported for both families is one change",
			body: `rules = [
				{backend = "nftables", family = "ipv4", table = "inet t", chain = "out", handle = 7, spec = "tcp dport 80 drop"},
				{backend = "nftables", family = "ipv6", table = "inet t", chain = "out", handle = 7, spec = "tcp dport 80 drop"},
			]`,
			want: []string{
				`nftables/inet t/out/handle 7: tcp dport 80 drop | nft delete rule inet t out handle 7 | {"backend":"nftables","family":"ipv4","table":"inet t","chain":"out","spec":"tcp dport 80 drop","handle":7}`,
			},
		},
		{name: "nothing to delete", body: `rules = []`},
		{
			name:    "a chain policy is not a rule",
			tools:   []string{"iptables-nft"},
			body:    `rules = [{backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", spec = "-P OUTPUT DROP"}]`,
			wantErr: "rules[0]: nft/filter/OUTPUT is a chain policy (-P OUTPUT DROP), not a rule",
		},
		{
			name:    "missing iptables",
			body:    `rules = [{backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", spec = "-j DROP"}]`,
			wantErr: "rules[0]: iptables-nft is not installed",
		},
		{
			name:    "unknown backend",
			body:    `rules = [{backend = "pf", family = "ipv4", table = "filter", chain = "OUTPUT", spec = "-j DROP"}]`,
			wantErr: `rules[0]: backend must be "nft", "legacy" or "nftables", not "pf"`,
		},
		{
			name:    "unknown table",
			tools:   []string{"iptables-nft"},
			body:    `rules = [{backend = "nft", family = "ipv4", table = "filters", chain = "OUTPUT", spec = "-j DROP"}]`,
			wantErr: `rules[0]: unknown iptables table "filters"`,
		},
		{
			name:    "unparseable spec",
			tools:   []string{"iptables-nft"},
			body:    `rules = [{backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", spec = "-m comment --comment \"open"}]`,
			wantErr: `rules[0]: spec "-m comment --comment \"open" is not a rule: unterminated double quote`,
		},
		{
			name:    "nftables without a handle",
			body:    `rules = [{backend = "nftables", family = "ipv4", table = "inet t", chain = "out", spec = "drop"}]`,
			wantErr: `rules[0]: an nftables rule needs its table as "FAMILY NAME" and its handle (got table "inet t", handle 0)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fakeTools(t, tt.tools...)
			args := decodeArgs(t, FirewallDelete{}.Spec(), tt.body)
			changes, err := FirewallDelete{}.Plan(context.Background(), &Env{}, args)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range changes {
				got = append(got, c.Target+" | "+c.Detail+" | "+string(c.Data))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFirewallDeleteTakesFacts: the default policy passes whole objects of
// facts.firewall.rules; the spec must accept them as they are.
func TestFirewallDeleteTakesFacts(t *testing.T) {
	fakeTools(t, "iptables-nft")
	args := decodeArgs(t, FirewallDelete{}.Spec(), `rules = [{
		id = "nft/ipv4/filter/OUTPUT/1a2b3c4d", backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT",
		position = 2, handle = 0, spec = "-d 169.254.169.254/32 -j DROP", effect = "drop", scope = "everyone",
		blocks = true, certain = true, deliberate = false, broad = false
	}]`)
	changes, err := FirewallDelete{}.Plan(context.Background(), &Env{}, args)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 {
		t.Fatalf("got %d changes, want 1", len(changes))
	}
	var d firewallDeleteData
	if err := json.Unmarshal(changes[0].Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.Spec != "-d 169.254.169.254/32 -j DROP" || d.Chain != "OUTPUT" || d.Copies != 1 {
		t.Errorf("data = %+v", d)
	}
}
