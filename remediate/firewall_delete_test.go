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
	"github.com/imdsmend/imdsmend/internal/types"
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
// After failAfter deletions (-1: never) a deletion fails. set replaces the chain, as
// another program would.
func fakeIptables(t *testing.T, rules []string, failAfter int) (chain func() []string, set func([]string)) {
	t.Helper()
	dir := t.TempDir()
	state := filepath.Join(dir, "output.rules")
	set = func(rules []string) {
		if err := os.WriteFile(state, []byte(strings.Join(rules, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set(rules)
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
	}, set
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
		name      string
		failAfter int
		status    types.Status
		error     string
		after     []string
		positions []int
	}{
		{"both copies", -1, types.StatusApplied, "", []string{other, other}, []int{2, 3}},
		{"the second deletion fails", 1, types.StatusApplied, "deleted 1 of 2 identical rules, then: ", []string{other, other, drop}, []int{2}},
		{"the first deletion fails", 0, types.StatusFailed, "Resource temporarily unavailable", all, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain, _ := fakeIptables(t, all, tt.failAfter)
			ctx := context.Background()
			x := &Executor{Registry: Builtin(Deps{}), Env: &Env{Allow: func(types.Permission) bool { return true }},
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
			if (len(pending) == 1) != (tt.status == types.StatusApplied) {
				t.Fatalf("undoable = %v; want the change exactly when it is applied", summary(pending))
			}
			x.Undo(ctx, pending)
			if diff := cmp.Diff(all, chain()); diff != "" {
				t.Errorf("chain after undo (-want +got):\n%s", diff)
			}
		})
	}
}

// applyOne plans and applies body with a fresh executor and returns it with the change.
func applyOne(t *testing.T, body string) (*Executor, *Change) {
	t.Helper()
	ctx := context.Background()
	x := &Executor{Registry: Builtin(Deps{}), Env: &Env{Allow: func(types.Permission) bool { return true }},
		Ledger: NewLedger(filepath.Join(t.TempDir(), "ledger.jsonl")), RunID: "r1", Enforce: true}
	changes := x.Plan(ctx, "firewall_blocks_imds", "firewall_delete", decodeArgs(t, FirewallDelete{}.Spec(), body))
	if len(changes) != 1 {
		t.Fatalf("planned %v, want one change", summary(changes))
	}
	x.Apply(ctx, changes)
	return x, changes[0]
}

// undoLast reverts the last run and returns the reverted change.
func undoLast(t *testing.T, x *Executor) *Change {
	t.Helper()
	pending, err := x.Undoable(true, nil)
	if err != nil || len(pending) != 1 {
		t.Fatalf("undoable %v, %v; want one change", summary(pending), err)
	}
	x.Undo(context.Background(), pending)
	return pending[0]
}

// TestFirewallDeleteUndoPlacement: exactly the planned number of identical copies goes and
// comes back; undo puts a rule back after the rule that preceded it, wherever that rule
// has moved, says the commands it ran, and inserts nothing when the rule is back already
// (an undo that crashed before its record).
func TestFirewallDeleteUndoPlacement(t *testing.T) {
	const (
		drop = "-A OUTPUT -d 169.254.169.254/32 -j DROP"
		a    = "-A OUTPUT -d 10.0.0.0/8 -j ACCEPT"
		b    = "-A OUTPUT -d 10.1.0.0/16 -j ACCEPT"
		c    = "-A OUTPUT -m comment --comment \"don\\'t\" -j ACCEPT"
		one  = `{backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", spec = "-d 169.254.169.254/32 -j DROP"}`
	)
	tests := []struct {
		name       string
		before     []string
		body       string
		afterApply []string
		meanwhile  func([]string) []string // what another program does before undo
		afterUndo  []string
		undoDetail string
	}{
		{
			name:       "three identical, two planned: one remains, two come back",
			before:     []string{drop, a, drop, drop},
			body:       "rules = [" + one + ", " + one + "]",
			afterApply: []string{a, drop},
			afterUndo:  []string{drop, a, drop, drop},
			undoDetail: "iptables-nft -t filter -I OUTPUT 2 -d 169.254.169.254/32 -j DROP; iptables-nft -t filter -I OUTPUT 1 -d 169.254.169.254/32 -j DROP",
		},
		{
			name:       "back after its neighbour, not at a shifted position",
			before:     []string{a, b, drop, c},
			body:       "rules = [" + one + "]",
			afterApply: []string{a, b, c},
			meanwhile:  func(r []string) []string { return append([]string{c}, r...) },
			afterUndo:  []string{c, a, b, drop, c},
			undoDetail: "iptables-nft -t filter -I OUTPUT 4 -d 169.254.169.254/32 -j DROP",
		},
		{
			name:       "a neighbour with an apostrophe in its comment",
			before:     []string{c, drop},
			body:       "rules = [" + one + "]",
			afterApply: []string{c},
			meanwhile:  func(r []string) []string { return append([]string{a}, r...) },
			afterUndo:  []string{a, c, drop},
			undoDetail: "iptables-nft -t filter -I OUTPUT 3 -d 169.254.169.254/32 -j DROP",
		},
		{
			name:       "the first rule goes back first",
			before:     []string{drop, a},
			body:       "rules = [" + one + "]",
			afterApply: []string{a},
			meanwhile:  func(r []string) []string { return append(r, b) },
			afterUndo:  []string{drop, a, b},
			undoDetail: "iptables-nft -t filter -I OUTPUT 1 -d 169.254.169.254/32 -j DROP",
		},
		{
			name:       "already back: nothing is inserted",
			before:     []string{a, drop},
			body:       "rules = [" + one + "]",
			afterApply: []string{a},
			meanwhile:  func(r []string) []string { return append(r, drop) },
			afterUndo:  []string{a, drop},
			undoDetail: "already reverted: nothing to do",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain, set := fakeIptables(t, tt.before, -1)
			x, ch := applyOne(t, tt.body)
			if ch.Status != types.StatusApplied {
				t.Fatalf("apply: %s %s", ch.Status, ch.Error)
			}
			if diff := cmp.Diff(tt.afterApply, chain()); diff != "" {
				t.Errorf("chain after apply (-want +got):\n%s", diff)
			}
			if tt.meanwhile != nil {
				set(tt.meanwhile(chain()))
			}
			u := undoLast(t, x)
			if u.Status != types.StatusReverted || u.Detail != tt.undoDetail {
				t.Errorf("undo: status %s, detail %q, error %q; want reverted, %q", u.Status, u.Detail, u.Error, tt.undoDetail)
			}
			if diff := cmp.Diff(tt.afterUndo, chain()); diff != "" {
				t.Errorf("chain after undo (-want +got):\n%s", diff)
			}
		})
	}
}

// fakeNft installs an nft whose `-j list chain` prints listing (or fails as script says)
// and which logs every other call to the returned file.
func fakeNft(t *testing.T, listing, onList string) (log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "calls")
	if err := os.WriteFile(filepath.Join(dir, "listing.json"), []byte(listing), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `#!/bin/sh
dir=` + dir + `
if [ "$1 $2 $3" = "-j list chain" ]; then
` + onList + `
  cat "$dir/listing.json"; exit 0
fi
echo "$*" >> "$dir/calls"
[ "$1" = -j ] && cat >> "$dir/calls"
exit 0
`
	if err := os.WriteFile(filepath.Join(dir, "nft"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":/usr/bin:/bin")
	return log
}

// TestFirewallDeleteNft: the rule is checked again just before it is deleted; a handle
// that now holds another rule is a skipped change with the reason, a chain nft says is gone
// is unchanged, and nft failing to run at all is a failure, never "the rule is gone".
func TestFirewallDeleteNft(t *testing.T) {
	const rule = `{backend = "nftables", family = "ipv4", table = "inet t", chain = "out", handle = 7, spec = "ip daddr 169.254.169.254 drop"}`
	imdsDrop := `{"rule": {"family": "inet", "table": "t", "chain": "out", "handle": 7, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "169.254.169.254"}}, {"drop": null}]}}`
	otherDrop := `{"rule": {"family": "inet", "table": "t", "chain": "out", "handle": 7, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "10.0.0.1"}}, {"drop": null}]}}`
	tests := []struct {
		name, listing, onList string
		status                types.Status
		error                 string
		deleted               bool
	}{
		{"the planned rule", `{"nftables": [` + imdsDrop + `]}`, "", types.StatusApplied, "", true},
		{"the handle holds another rule", `{"nftables": [` + otherDrop + `]}`, "", types.StatusSkipped, "handle 7 now holds another rule (ip daddr 10.0.0.1 drop), not the one planned", false},
		{"the chain is gone", "", `echo "Error: No such file or directory" >&2; exit 1`, types.StatusUnchanged, "", false},
		{"nft does not run", "", `echo "nft: error while loading shared libraries: libnftables.so.1: cannot open shared object file: No such file or directory" >&2; exit 127`, types.StatusFailed, "exit status 127", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := fakeNft(t, tt.listing, tt.onList)
			_, c := applyOne(t, "rules = ["+rule+"]")
			if c.Status != tt.status || !strings.Contains(c.Error, tt.error) {
				t.Errorf("status %s, error %q; want %s, error containing %q", c.Status, c.Error, tt.status, tt.error)
			}
			calls, _ := os.ReadFile(log)
			if deleted := strings.Contains(string(calls), "delete rule inet t out handle 7"); deleted != tt.deleted {
				t.Errorf("nft calls %q; deleted %v, want %v", calls, deleted, tt.deleted)
			}
		})
	}
}

// TestFirewallDeleteNftUndoAlreadyBack: an nft rule the chain holds again is not added
// twice.
func TestFirewallDeleteNftUndoAlreadyBack(t *testing.T) {
	back := `{"nftables": [{"rule": {"family": "inet", "table": "t", "chain": "out", "handle": 9, "expr": [{"drop": null}]}}]}`
	log := fakeNft(t, back, "")
	data, _ := json.Marshal(firewallDeleteData{Backend: "nftables", Family: "ipv4", Table: "inet t", Chain: "out", Spec: "drop", Handle: 7,
		Positions: []int{0}, Expr: json.RawMessage(`[{"drop": null}]`)})
	c := &Change{Data: data}
	if err := (FirewallDelete{}).Undo(context.Background(), &Env{}, c); err != nil {
		t.Fatal(err)
	}
	if calls, _ := os.ReadFile(log); len(calls) != 0 {
		t.Errorf("nft was asked to change the rules: %s", calls)
	}
	if c.Detail != "nothing to do: nftables/ipv4/inet t/out holds the rule again" {
		t.Errorf("detail %q", c.Detail)
	}
}

// TestFirewallDeleteNftUndoBesideNeighbour: an nft rule goes back right after the rule that
// preceded it, though a rule added since has shifted the indexes.
func TestFirewallDeleteNftUndoBesideNeighbour(t *testing.T) {
	rule := func(handle int, addr string) string {
		return fmt.Sprintf(`{"rule": {"family": "inet", "table": "t", "chain": "out", "handle": %d, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": %q}}, {"accept": null}]}}`, handle, addr)
	}
	// It was [a, b, deleted, c]; x has been put first since.
	now := `{"nftables": [` + strings.Join([]string{rule(9, "10.0.0.9"), rule(1, "10.0.0.1"), rule(2, "10.0.0.2"), rule(3, "10.0.0.3")}, ", ") + `]}`
	log := fakeNft(t, now, "")
	prev := "ip daddr 10.0.0.2 accept"
	data, _ := json.Marshal(firewallDeleteData{Backend: "nftables", Family: "ipv4", Table: "inet t", Chain: "out", Spec: "drop", Handle: 7,
		Positions: []int{2}, Previous: []*string{&prev}, Expr: json.RawMessage(`[{"drop": null}]`)})
	c := &Change{Data: data}
	if err := (FirewallDelete{}).Undo(context.Background(), &Env{}, c); err != nil {
		t.Fatal(err)
	}
	calls, _ := os.ReadFile(log)
	if !strings.Contains(string(calls), `"insert":{"rule":{"chain":"out","expr":[{"drop":null}],"family":"inet","index":3,"table":"t"}}`) {
		t.Errorf("nft calls:\n%s\nwant an insert at index 3, after 10.0.0.2", calls)
	}
	if !strings.HasSuffix(c.Detail, "| nft -j -f -") || !strings.Contains(c.Detail, `"index":3`) {
		t.Errorf("detail %q is not the command undo ran", c.Detail)
	}
}
