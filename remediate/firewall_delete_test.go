package remediate

import (
	"context"
	"encoding/json"
	"fmt"
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
			name:    "an iptables chain that reads as an option",
			tools:   []string{"iptables-nft"},
			body:    `rules = [{backend = "nft", family = "ipv4", table = "filter", chain = "-F", spec = "-j DROP"}]`,
			wantErr: `rules[0]: bad chain name "-F"`,
		},
		{
			// nft parses its arguments as one line: this table would flush the ruleset.
			name:    "an nftables table name that reads as more commands",
			body:    `rules = [{backend = "nftables", family = "ipv4", table = "inet t out; flush ruleset; list chain inet t", chain = "out", handle = 7, spec = "drop"}]`,
			wantErr: `rules[0]: nftables table "inet t out; flush ruleset; list chain inet t" chain "out": not an ip, ip6 or inet table with plain names`,
		},
		{
			name:    "an nftables family that carries no IMDS traffic",
			body:    `rules = [{backend = "nftables", family = "ipv4", table = "bridge t", chain = "out", handle = 7, spec = "drop"}]`,
			wantErr: `rules[0]: nftables table "bridge t" chain "out": not an ip, ip6 or inet table`,
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

// fakeIptables installs an iptables-nft that keeps the OUTPUT chain of the filter table in
// a file, one "-A OUTPUT SPEC" line per rule, and answers -S, -D and -I as iptables does.
// After failAfter deletions (-1: never) a deletion fails.
func fakeIptables(t *testing.T, rules []string, failAfter int) (chain func() []string) {
	t.Helper()
	dir := t.TempDir()
	state := filepath.Join(dir, "output.rules")
	if err := os.WriteFile(state, []byte(strings.Join(rules, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state+".deletions", []byte(fmt.Sprint(failAfter)), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `#!/bin/bash
state=` + state + `
[ "$1" = --version ] && { echo "iptables v1.8.9 (nf_tables)"; exit 0; }
args=("$@"); n=${#args[@]}
[ "${args[n-2]}" = --wait ] && set -- "${args[@]:0:n-2}"
[ "$1 $2 $4" = "-t filter OUTPUT" ] || { echo "fake iptables: unexpected $*" >&2; exit 2; }
op=$3; shift 4
case $op in
-S) echo "-P OUTPUT ACCEPT"; grep -v '^$' "$state"; exit 0;;
-D) left=$(cat "$state.deletions")
    [ "$left" = 0 ] && { echo "iptables: Resource temporarily unavailable." >&2; exit 4; }
    echo $((left - 1)) > "$state.deletions"
    awk -v r="-A OUTPUT $*" 'r == $0 && !done { done = 1; next } { print }' "$state" > "$state.new"
    cmp -s "$state" "$state.new" && { echo "iptables: Bad rule (does a matching rule exist in that chain?)." >&2; exit 1; }
    mv "$state.new" "$state";;
-I) pos=$1; shift
    awk -v p="$pos" -v r="-A OUTPUT $*" 'NR == p { print r; done = 1 } { print } END { if (!done) print r }' "$state" > "$state.new"
    mv "$state.new" "$state";;
*) exit 2;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "iptables-nft"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":/usr/bin:/bin")
	return func() []string {
		data, err := os.ReadFile(state)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSpace(string(data)), "\n")
	}
}

// TestFirewallDeleteApplyUndo: the copies the policy names go, each recorded where it
// was; undo puts them back there; a deletion that fails part way is still an applied
// change undo can revert, never an unrecorded one.
func TestFirewallDeleteApplyUndo(t *testing.T) {
	const drop = "-A OUTPUT -d 169.254.169.254/32 -j DROP"
	const other = "-A OUTPUT -d 10.0.0.0/8 -j ACCEPT"
	all := []string{other, drop, other, drop}
	body := `rules = [
		{backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", spec = "-d 169.254.169.254/32 -j DROP"},
		{backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", spec = "-d 169.254.169.254/32 -j DROP"},
	]`
	tests := []struct {
		name          string
		failAfter     int
		status, error string
		after         []string
		positions     []int
	}{
		{"both copies", -1, StatusApplied, "", []string{other, other}, []int{2, 3}},
		{"the second deletion fails", 1, StatusApplied, "deleted 1 of 2 identical rules, then: ", []string{other, other, drop}, []int{2}},
		{"the first deletion fails", 0, StatusFailed, "Resource temporarily unavailable", all, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain := fakeIptables(t, all, tt.failAfter)
			ctx := context.Background()
			x := &Executor{Registry: Default(), Env: &Env{Allow: func(string) bool { return true }},
				Ledger: NewLedger(filepath.Join(t.TempDir(), "ledger.jsonl")), RunID: "r1", Enforce: true}
			changes := x.Plan(ctx, "firewall_blocks_imds", "firewall_delete", decodeArgs(t, FirewallDelete{}.Spec(), body))
			x.Apply(ctx, changes)
			c := changes[0]
			if c.Status != tt.status || !strings.Contains(c.Error, tt.error) {
				t.Errorf("status %s, error %q; want %s, error containing %q", c.Status, c.Error, tt.status, tt.error)
			}
			if diff := cmp.Diff(tt.after, chain()); diff != "" {
				t.Errorf("chain after apply (-want +got):\n%s", diff)
			}
			var d firewallDeleteData
			if err := json.Unmarshal(c.Data, &d); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.positions, d.Positions); diff != "" {
				t.Errorf("recorded positions (-want +got):\n%s", diff)
			}
			pending, err := x.Undoable(true, nil)
			if err != nil {
				t.Fatal(err)
			}
			if (len(pending) == 1) != (tt.status == StatusApplied) {
				t.Fatalf("undoable = %v; want the change exactly when it is applied", summary(pending))
			}
			x.Undo(ctx, pending)
			if diff := cmp.Diff(all, chain()); diff != "" {
				t.Errorf("chain after undo (-want +got):\n%s", diff)
			}
		})
	}
}
