package remediate

// Tests that pin what mutation testing (tests/mutate, docs/testing.md) showed no other
// test did in the fixers.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"

	"github.com/imdsmend/imdsmend/facts/firewall"
	"github.com/imdsmend/imdsmend/facts/proxy"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/tests/tree"
)

// nftRuleJSON is one rule of chain "inet t out" as `nft -j list chain` prints it.
func nftRuleJSON(handle int, addr string) string {
	return fmt.Sprintf(`{"rule": {"family": "inet", "table": "t", "chain": "out", "handle": %d, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": %q}}, {"drop": null}]}}`, handle, addr)
}

// fakeNftFailing installs an nft that lists listing and fails every other call.
func fakeNftFailing(t *testing.T, listing string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "listing.json"), []byte(listing), 0o644); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nif [ \"$1 $2 $3\" = \"-j list chain\" ]; then cat " + filepath.Join(dir, "listing.json") + "; exit 0; fi\necho 'Error: Could not process rule: Operation not permitted' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, "nft"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":/usr/bin:/bin")
}

// TestFirewallDeleteNftReload: when the planned handle is gone (a reload), the one rule
// that reads the planned spec is the one deleted, not another; two such rules are refused.
func TestFirewallDeleteNftReload(t *testing.T) {
	const rule = `{backend = "nftables", family = "ipv4", table = "inet t", chain = "out", handle = 7, spec = "ip daddr 169.254.169.254 drop"}`
	tests := []struct {
		name    string
		rules   []string
		status  types.Status
		error   string
		deleted string
	}{
		{"the same rule under a new handle", []string{nftRuleJSON(3, "10.0.0.1"), nftRuleJSON(9, "169.254.169.254")}, types.StatusApplied, "", "delete rule inet t out handle 9"},
		{"two rules read the spec", []string{nftRuleJSON(8, "169.254.169.254"), nftRuleJSON(3, "10.0.0.1"), nftRuleJSON(9, "169.254.169.254")}, types.StatusSkipped, "handle 7 is gone and 2 rules read", ""},
		{"no rule reads the spec", []string{nftRuleJSON(3, "10.0.0.1")}, types.StatusUnchanged, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := fakeNft(t, `{"nftables": [`+strings.Join(tt.rules, ", ")+`]}`, "")
			_, c := applyOne(t, "rules = ["+rule+"]")
			if c.Status != tt.status || !strings.Contains(c.Error, tt.error) {
				t.Errorf("status %s, error %q; want %s, error containing %q", c.Status, c.Error, tt.status, tt.error)
			}
			calls, _ := os.ReadFile(log)
			if got := strings.TrimSpace(string(calls)); got != tt.deleted {
				t.Errorf("nft calls %q, want %q", got, tt.deleted)
			}
		})
	}
}

// TestFirewallDeleteNftFails: nft failing to delete fails the change; failing to put the
// rule back fails the undo.
func TestFirewallDeleteNftFails(t *testing.T) {
	fakeNftFailing(t, `{"nftables": [`+nftRuleJSON(7, "169.254.169.254")+`]}`)
	_, c := applyOne(t, `rules = [{backend = "nftables", family = "ipv4", table = "inet t", chain = "out", handle = 7, spec = "ip daddr 169.254.169.254 drop"}]`)
	if c.Status != types.StatusFailed || !strings.Contains(c.Error, "Operation not permitted") {
		t.Errorf("apply: status %s, error %q; want failed with nft's error", c.Status, c.Error)
	}

	fakeNftFailing(t, `{"nftables": [`+nftRuleJSON(3, "10.0.0.1")+`]}`)
	data, _ := json.Marshal(firewallDeleteData{Backend: "nftables", Family: "ipv4", Table: "inet t", Chain: "out", Spec: "drop", Handle: 7,
		Positions: []int{0}, Expr: json.RawMessage(`[{"drop": null}]`)})
	if err := (FirewallDelete{}).Undo(context.Background(), &Env{}, &Change{Data: data}); err == nil || !strings.Contains(err.Error(), "Operation not permitted") {
		t.Errorf("undo error %v, want nft's error", err)
	}
}

// TestFirewallDeleteNftUndoPlacement: a rule deleted from the middle of a chain is
// inserted at its index, one from the end is added; a record without positions (nothing
// was deleted) changes nothing.
func TestFirewallDeleteNftUndoPlacement(t *testing.T) {
	two := `{"nftables": [` + nftRuleJSON(1, "10.0.0.1") + `, ` + nftRuleJSON(2, "10.0.0.2") + `]}`
	tests := []struct {
		name      string
		positions []int
		want      string // in the nft calls; "" for none
	}{
		{"from the middle", []int{1}, `{"nftables":[{"insert":{"rule":{"chain":"out","expr":[{"drop":null}],"family":"inet","index":1,"table":"t"}}}]}`},
		{"from the end", []int{2}, `{"nftables":[{"add":{"rule":{"chain":"out","expr":[{"drop":null}],"family":"inet","table":"t"}}}]}`},
		{"nothing was deleted", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := fakeNft(t, two, "")
			data, _ := json.Marshal(firewallDeleteData{Backend: "nftables", Family: "ipv4", Table: "inet t", Chain: "out", Spec: "drop", Handle: 7,
				Positions: tt.positions, Expr: json.RawMessage(`[{"drop": null}]`)})
			if err := (FirewallDelete{}).Undo(context.Background(), &Env{}, &Change{Data: data}); err != nil {
				t.Fatal(err)
			}
			calls, _ := os.ReadFile(log)
			if tt.want == "" && len(calls) != 0 || !strings.Contains(string(calls), tt.want) {
				t.Errorf("nft calls:\n%s\nwant %s", calls, tt.want)
			}
		})
	}
}

// TestFirewallDeleteCopies: one planned copy of two deletes one; a record from before
// copies were counted (copies 0) deletes one too.
func TestFirewallDeleteCopies(t *testing.T) {
	const drop = "-A OUTPUT -d 169.254.169.254/32 -j DROP"
	const a = "-A OUTPUT -d 10.0.0.0/8 -j ACCEPT"
	chain, _ := fakeIptables(t, []string{drop, a, drop}, -1)
	_, c := applyOne(t, `rules = [{backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", spec = "-d 169.254.169.254/32 -j DROP"}]`)
	if c.Status != types.StatusApplied {
		t.Fatalf("apply: %s %s", c.Status, c.Error)
	}
	if diff := cmp.Diff([]string{a, drop}, chain()); diff != "" {
		t.Errorf("chain after apply (-want +got):\n%s", diff)
	}

	chain, _ = fakeIptables(t, []string{drop, a, drop}, -1)
	d := firewallDeleteData{Backend: "nft", Family: "ipv4", Table: "filter", Chain: "OUTPUT", Spec: "-d 169.254.169.254/32 -j DROP"}
	if err := d.deleteIptables(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{a, drop}, chain()); diff != "" {
		t.Errorf("chain after a copies-0 record (-want +got):\n%s", diff)
	}
}

// A held xtables lock is named in the error; another failure is not blamed on it.
func TestIptablesErrorNamesTheLock(t *testing.T) {
	d := &firewallDeleteData{Backend: "nft", Family: "ipv4", Table: "filter", Chain: "OUTPUT"}
	locked := iptablesError("delete", d, errors.New("exit status 4: Another app is currently holding the xtables lock."))
	if !strings.Contains(locked.Error(), firewall.XtablesLockPath()) || !strings.Contains(locked.Error(), "held by another program") {
		t.Errorf("lock error %q does not name the lock", locked)
	}
	other := iptablesError("delete", d, errors.New("exit status 1: Bad rule"))
	if strings.Contains(other.Error(), "held by another program") {
		t.Errorf("error %q blames the lock", other)
	}
}

// An unknown backend or family has no iptables command: apply and undo fail with that.
func TestFirewallDeleteUnknownBackend(t *testing.T) {
	for _, backend := range []string{"pf", ""} {
		d := firewallDeleteData{Backend: backend, Family: "ipv4", Table: "filter", Chain: "OUTPUT", Spec: "-j DROP"}
		if err := d.deleteIptables(); err == nil {
			t.Errorf("backend %q: delete succeeded", backend)
		}
		if _, err := d.restoreIptables(); err == nil {
			t.Errorf("backend %q: restore succeeded", backend)
		}
	}
}

// A rule without a spec (an optional attribute left null) is refused at plan, not a panic.
func TestFirewallDeletePlanNullSpec(t *testing.T) {
	fakeTools(t, "iptables-nft")
	args := decodeArgs(t, FirewallDelete{}.Spec(), `rules = [{backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", spec = null}]`)
	if _, err := (FirewallDelete{}).Plan(context.Background(), &Env{}, args); err == nil {
		t.Error("a rule without a spec was planned")
	}
}

// TestFirewallDeleteObserveEdges: a result recorded before snapshots says the rules went
// only when it holds their positions; nft failing to list is an error, never "in effect".
func TestFirewallDeleteObserveEdges(t *testing.T) {
	noPos, _ := json.Marshal(firewallDeleteData{Backend: "nft", Family: "ipv4", Table: "filter", Chain: "OUTPUT", Spec: "-j DROP"})
	if ok, err := (FirewallDelete{}).Observe(context.Background(), &Env{}, &Change{Data: noPos}); ok || err == nil {
		t.Errorf("no snapshot, no positions: %v, %v; want false and an error", ok, err)
	}
	withPos, _ := json.Marshal(firewallDeleteData{Backend: "nft", Family: "ipv4", Table: "filter", Chain: "OUTPUT", Spec: "-j DROP", Positions: []int{1}})
	if ok, err := (FirewallDelete{}).Observe(context.Background(), &Env{}, &Change{Data: withPos}); !ok || err != nil {
		t.Errorf("no snapshot, positions: %v, %v; want true", ok, err)
	}

	fakeNft(t, "", `echo "nft: error while loading shared libraries" >&2; exit 127`)
	nft, _ := json.Marshal(firewallDeleteData{Backend: "nftables", Family: "ipv4", Table: "inet t", Chain: "out", Spec: "drop", Handle: 7})
	if ok, err := (FirewallDelete{}).Observe(context.Background(), &Env{}, &Change{Data: nft, Before: json.RawMessage(`{"present":1}`)}); ok || err == nil {
		t.Errorf("nft fails: %v, %v; want false and an error", ok, err)
	}
}

// The snapshot of an nft rule found under another handle (a reload) records where it is.
func TestFirewallDeleteSnapshotReloaded(t *testing.T) {
	fakeNft(t, `{"nftables": [`+nftRuleJSON(3, "10.0.0.1")+`, `+nftRuleJSON(9, "169.254.169.254")+`]}`, "")
	b := snapshotOf(t, firewallDeleteData{Backend: "nftables", Family: "ipv4", Table: "inet t", Chain: "out", Spec: "ip daddr 169.254.169.254 drop", Handle: 7})
	if b.Present != 1 || !cmp.Equal(b.Positions, []int{1}) || len(b.Previous) != 1 || b.Previous[0] == nil || *b.Previous[0] != "ip daddr 10.0.0.1 drop" {
		t.Errorf("snapshot %+v, want one rule at index 1 after ip daddr 10.0.0.1 drop", b)
	}
}

// TestLedgerRepairLongTornTail: a torn last line longer than the 4 KiB read buffer is cut
// back to the newline before it, even when that newline is the file's first byte.
func TestLedgerRepairLongTornTail(t *testing.T) {
	for _, size := range []int{4095, 4096, 4097, 9000} {
		p := filepath.Join(t.TempDir(), "ledger.jsonl")
		torn := "\n" + `{"time":"` + strings.Repeat("x", size-1-len(`{"time":"`))
		if err := os.WriteFile(p, []byte(torn), 0o600); err != nil {
			t.Fatal(err)
		}
		l := NewLedger(p)
		if err := l.Append(Entry{RunID: "r", Phase: PhaseIntent, Change: Change{ID: "a"}}); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(raw), "\n{") || strings.Count(string(raw), "\n") != 2 {
			t.Errorf("%d-byte torn tail: ledger %.80q…, want the first newline kept and the torn line cut", len(torn), raw)
		}
	}
}

// TestRouteRecordRoute: the route the fixer adds is 169.254.169.254/32 through the named
// interface; an interface that does not exist is an error.
func TestRouteRecordRoute(t *testing.T) {
	rt, err := routeRecord{Interface: "lo"}.route()
	if err != nil {
		t.Fatal(err)
	}
	if rt.Dst.String() != "169.254.169.254/32" || rt.LinkIndex == 0 {
		t.Errorf("route to %v via link %d, want 169.254.169.254/32 via lo", rt.Dst, rt.LinkIndex)
	}
	if _, err := (routeRecord{Interface: "nope0"}).route(); err == nil {
		t.Error("a route through a missing interface was built")
	}
}

// TestRouteRecordText: the route as `ip route` reads it, the metric only when set.
func TestRouteRecordText(t *testing.T) {
	for _, tt := range []struct {
		r    routeRecord
		want string
	}{
		{routeRecord{Type: 1, Interface: "eth0", Gateway: "10.0.0.1"}, "unicast 169.254.169.254/32 via 10.0.0.1 dev eth0"},
		{routeRecord{Type: 1, Interface: "eth0", Metric: 100}, "unicast 169.254.169.254/32 dev eth0 metric 100"},
	} {
		if got := tt.r.command(); got != tt.want {
			t.Errorf("command() = %q, want %q", got, tt.want)
		}
	}
}

// TestRouteRecordRoutes: the current route already serves when type, interface and
// gateway are the wanted ones; none does not.
func TestRouteRecordRoutes(t *testing.T) {
	want := routeRecord{Type: 1, Interface: "eth0", Gateway: "10.0.0.1", Metric: 5}
	for _, tt := range []struct {
		cur  *routeRecord
		want bool
	}{
		{nil, false},
		{&routeRecord{Type: 1, Interface: "eth0", Gateway: "10.0.0.1"}, true},
		{&routeRecord{Type: 7, Interface: "eth0", Gateway: "10.0.0.1"}, false},
		{&routeRecord{Type: 1, Interface: "eth1", Gateway: "10.0.0.1"}, false},
		{&routeRecord{Type: 1, Interface: "eth0", Gateway: "10.0.0.2"}, false},
	} {
		if got := tt.cur.routes(want); got != tt.want {
			t.Errorf("%+v routes %+v = %v, want %v", tt.cur, want, got, tt.want)
		}
	}
}

// TestRouteRestorePlanChecks: a gateway that is not IPv4 is refused; a plan through lo
// without a gateway (where no route to IMDS exists yet) adds it with no metric. Plan only
// reads routes and links.
func TestRouteRestorePlanChecks(t *testing.T) {
	args := func(iface, gw string) cty.Value {
		g := cty.NullVal(cty.String)
		if gw != "" {
			g = cty.StringVal(gw)
		}
		return cty.ObjectVal(map[string]cty.Value{"interface": cty.StringVal(iface), "gateway": g})
	}
	ctx := context.Background()
	for _, gw := range []string{"fd00::1", "bogus"} {
		if _, err := (RouteRestore{}).Plan(ctx, &Env{}, args("lo", gw)); err == nil || !strings.Contains(err.Error(), "is not an IPv4 address") {
			t.Errorf("gateway %s: %v, want a refusal", gw, err)
		}
	}
	if cur, err := currentIMDSRoute(); err != nil || cur != nil {
		t.Skipf("this host routes IMDS already (%v, %v)", cur, err)
	}
	changes, err := (RouteRestore{}).Plan(ctx, &Env{}, args("lo", ""))
	if err != nil || len(changes) != 1 {
		t.Fatalf("Plan = %v, %v", changes, err)
	}
	if changes[0].Detail != "ip route add 169.254.169.254/32 dev lo" {
		t.Errorf("detail %q", changes[0].Detail)
	}
}

// A rule iptables -S prints without any match or target ("-A OUTPUT") still holds its
// place: positions count it.
func TestFirewallDeleteCountsEmptyRules(t *testing.T) {
	const drop = "-A OUTPUT -d 169.254.169.254/32 -j DROP"
	fakeIptables(t, []string{"-A OUTPUT", drop}, -1)
	_, c := applyOne(t, `rules = [{backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", spec = "-d 169.254.169.254/32 -j DROP"}]`)
	var d firewallDeleteData
	if err := json.Unmarshal(c.Data, &d); err != nil {
		t.Fatal(err)
	}
	if c.Status != types.StatusApplied || !cmp.Equal(d.Positions, []int{2}) {
		t.Errorf("status %s %s, positions %v; want applied at 2", c.Status, c.Error, d.Positions)
	}
}

func TestPhysicalLine(t *testing.T) {
	data := []byte("ab\ncd\nef")
	for _, tt := range []struct {
		offset int
		want   [2]int
	}{{0, [2]int{0, 2}}, {1, [2]int{0, 2}}, {4, [2]int{3, 5}}, {7, [2]int{6, 8}}} {
		if got := physicalLine(data, tt.offset); got != tt.want {
			t.Errorf("physicalLine(%d) = %v, want %v", tt.offset, got, tt.want)
		}
	}
}

// TestNoProxyRecordChecks: a record whose insertions do not fit the file fails Apply
// rather than reporting a change it did not make; a file changed since the edit is not
// in effect (and says why).
func TestNoProxyRecordChecks(t *testing.T) {
	const file = "/etc/environment"
	root := t.TempDir()
	tree.Write(t, root, map[string]string{file[1:]: "http_proxy=http://proxy.corp:3128\n"})
	env := testEnv(root, false)
	ctx := context.Background()
	plan := func() *Change {
		changes, err := NoProxy{}.Plan(ctx, env, filesArg(file))
		if err != nil || len(changes) != 1 {
			t.Fatalf("Plan = %v, %v", changes, err)
		}
		return changes[0]
	}
	c := plan()
	var d noProxyData
	if err := json.Unmarshal(c.Data, &d); err != nil {
		t.Fatal(err)
	}
	d.Inserts[0].Offset = 1 << 20
	c.Data, _ = json.Marshal(d)
	if err := (NoProxy{}).Apply(ctx, env, c); err == nil || !strings.Contains(err.Error(), "does not fit the file") {
		t.Errorf("Apply of a record that does not fit = %v", err)
	}

	c = plan()
	if err := (NoProxy{}).Apply(ctx, env, c); err != nil {
		t.Fatal(err)
	}
	tree.Write(t, root, map[string]string{file[1:]: "http_proxy=http://other:3128\n"})
	if ok, err := (NoProxy{}).Observe(ctx, env, c); ok || err == nil || !strings.Contains(err.Error(), "changed since imdsmend planned its edit") {
		t.Errorf("Observe of a changed file = %v, %v; want false and why", ok, err)
	}
}

// The restart hint says imdsmend restarts the unit only when restart_units is allowed.
func TestPickedUpByRestartHint(t *testing.T) {
	f := &proxy.File{Kind: proxy.KindUnit, Unit: "docker.service"}
	for _, tt := range []struct {
		allow func(types.Permission) bool
		want  string
	}{
		{nil, "allow restart_units in the policy"},
		{func(types.Permission) bool { return false }, "allow restart_units in the policy"},
		{func(p types.Permission) bool { return p == types.PermRestartUnits }, "imdsmend restarts it (restart_unit)"},
	} {
		if got := pickedUpBy(f, &Env{Allow: tt.allow}); !strings.Contains(got, tt.want) {
			t.Errorf("pickedUpBy = %q, want %q in it", got, tt.want)
		}
	}
}
