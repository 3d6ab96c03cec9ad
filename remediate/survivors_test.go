package remediate

// Tests that kill the survivors of `make mutate` (docs/testing.md) in the fixers.

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/facts/cloudinit"
	"github.com/imdsmend/imdsmend/facts/firewall"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/tests/tree"
	"github.com/zclconf/go-cty/cty"
)

// TestUndoApplyBadRecord: a change record that does not decode is an error, never a
// change taken as done.
func TestUndoApplyBadRecord(t *testing.T) {
	ctx := context.Background()
	env := testEnv(t.TempDir(), false)
	tests := []struct {
		name string
		fn   func(*Change) error
	}{
		{"no_proxy undo", func(c *Change) error { return NoProxy{}.Undo(ctx, env, c) }},
		{"firewall_delete apply", func(c *Change) error { return FirewallDelete{}.Apply(ctx, env, c) }},
		{"firewall_allow undo", func(c *Change) error { return FirewallAllow{}.Undo(ctx, env, c) }},
		{"metadata_options undo", func(c *Change) error { return MetadataOptions{}.Undo(ctx, env, c) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.fn(&Change{Data: json.RawMessage(`{"path": 1`)}); err == nil || !strings.Contains(err.Error(), "record") {
				t.Errorf("error %v, want one about the record", err)
			}
		})
	}
}

// TestFirewallDeleteSnapshotNeighbourComment: the neighbour an nft rule goes back after is
// recorded with its own comment, not the deleted rule's.
func TestFirewallDeleteSnapshotNeighbourComment(t *testing.T) {
	tests := []struct {
		name, prevComment, want string
	}{
		{"commented neighbour", "keep me", `ip daddr 10.0.0.1 drop comment "keep me"`},
		{"plain neighbour", "", "ip daddr 10.0.0.1 drop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := strings.Replace(nftRuleJSON(3, "10.0.0.1"), `"handle": 3,`, `"handle": 3, "comment": `+jsonString(tt.prevComment)+`,`, 1)
			target := strings.Replace(nftRuleJSON(7, "169.254.169.254"), `"handle": 7,`, `"handle": 7, "comment": "blocker",`, 1)
			fakeNft(t, `{"nftables": [`+prev+`, `+target+`]}`, "")
			b := snapshotOf(t, firewallDeleteData{Backend: "nftables", Family: "ipv4", Table: "inet t", Chain: "out",
				Spec: `ip daddr 169.254.169.254 drop comment "blocker"`, Handle: 7})
			if b.Present != 1 || len(b.Previous) != 1 || b.Previous[0] == nil || *b.Previous[0] != tt.want {
				t.Errorf("snapshot %+v (previous %v), want one rule after %q", b, deref(b.Previous), tt.want)
			}
		})
	}
}

// snapshotOf takes the firewall_delete snapshot of the change d records.
func snapshotOf(t *testing.T, d firewallDeleteData) firewallBefore {
	t.Helper()
	data, _ := json.Marshal(d)
	c := &Change{Data: data}
	if err := (FirewallDelete{}).Snapshot(context.Background(), &Env{}, c); err != nil {
		t.Fatal(err)
	}
	var b firewallBefore
	if err := json.Unmarshal(c.Before, &b); err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func deref(ps []*string) []string {
	var out []string
	for _, p := range ps {
		if p != nil {
			out = append(out, *p)
		}
	}
	return out
}

// TestFirewallDeleteObserveNftCount: an nft change is in effect only while fewer rules read
// the spec than before it.
func TestFirewallDeleteObserveNftCount(t *testing.T) {
	rule := nftRuleJSON(7, "169.254.169.254")
	tests := []struct {
		name    string
		rules   []string
		before  int
		applied bool
	}{
		{"still there", []string{rule}, 1, false},
		{"one of two gone", []string{rule}, 2, true},
		{"gone", nil, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fakeNft(t, `{"nftables": [`+strings.Join(tt.rules, ", ")+`]}`, "")
			data, _ := json.Marshal(firewallDeleteData{Backend: "nftables", Family: "ipv4", Table: "inet t", Chain: "out",
				Spec: "ip daddr 169.254.169.254 drop", Handle: 7})
			before, _ := json.Marshal(firewallBefore{Present: tt.before})
			ok, err := (FirewallDelete{}).Observe(context.Background(), &Env{}, &Change{Data: data, Before: before})
			if ok != tt.applied || err != nil {
				t.Errorf("Observe = %v, %v; want %v", ok, err, tt.applied)
			}
		})
	}
}

// TestCloudInitRerunMarker: without a boot ID in the facts the marker says "unknown"; a
// marker that cannot be removed after a failed rerun is part of the error.
func TestCloudInitRerunMarker(t *testing.T) {
	tests := []struct {
		name   string
		facts  *facts.Facts
		marker string
	}{
		{"no facts", nil, "unknown\n"},
		{"no cloud-init facts", &facts.Facts{}, "unknown\n"},
		{"no boot ID", &facts.Facts{CloudInit: &cloudinit.CloudInit{}}, "unknown\n"},
		{"a boot ID", &facts.Facts{CloudInit: &cloudinit.CloudInit{BootID: "b00t"}}, "b00t\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := testEnv(t.TempDir(), false)
			env.Facts = tt.facts
			fx := CloudInitRerun{Run: func(context.Context, ...string) error { return nil }}
			if err := fx.Apply(context.Background(), env, &Change{Target: "cloud-init"}); err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(env.Paths.State(rerunMarker)); err != nil || string(got) != tt.marker {
				t.Errorf("marker = %q, %v; want %q", got, err, tt.marker)
			}
		})
	}

	env := testEnv(t.TempDir(), false)
	// The command fails after taking the marker away itself: removing it fails too.
	fx := CloudInitRerun{Run: func(context.Context, ...string) error {
		if err := os.Remove(env.Paths.State(rerunMarker)); err != nil {
			t.Fatal(err)
		}
		return errors.New("exit status 1")
	}}
	err := fx.Apply(context.Background(), env, &Change{Target: "cloud-init"})
	if err == nil || !strings.Contains(err.Error(), "exit status 1") || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Apply = %v, want the command's failure and the marker's", err)
	}
}

// TestRateLimitCallerInsertsFirst: the rate limit goes first in OUTPUT, before any rule
// that would accept the traffic.
func TestRateLimitCallerInsertsFirst(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	script := "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'iptables v1.8.9 (nf_tables)'; exit 0; }\necho \"$*\" >> " + log + "\ncase \" $* \" in *\" -C \"*) exit 1;; esac\nexit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "iptables"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":/usr/bin:/bin")
	spec := rateLimitSpec("ipv4", 1001, "5/minute", 3)
	tests := []struct {
		name, want string
	}{
		{"not there", "-t filter -I OUTPUT 1 " + strings.Join(spec, " ")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, _ := json.Marshal(rateLimitData{Family: "ipv4", User: "poller", UID: 1001, Spec: spec})
			if err := (RateLimitCaller{}).Apply(context.Background(), &Env{}, &Change{Data: data}); err != nil {
				t.Fatal(err)
			}
			calls, _ := os.ReadFile(log)
			if !strings.Contains(string(calls), tt.want) {
				t.Errorf("iptables calls:\n%s\nwant %s", calls, tt.want)
			}
		})
	}
}

// TestLineCut: a line is cut from its first byte to its newline (or the file's end).
func TestLineCut(t *testing.T) {
	data := []byte("one\ntwo\nthree")
	tests := []struct {
		n    int
		want cut
		err  bool
	}{
		{1, cut{Line: 1, Start: 0, End: 4, Text: "one\n"}, false},
		{2, cut{Line: 2, Start: 4, End: 8, Text: "two\n"}, false},
		{3, cut{Line: 3, Start: 8, End: 13, Text: "three"}, false},
		{4, cut{}, true},
		{0, cut{}, true},
	}
	for _, tt := range tests {
		got, err := lineCut(data, tt.n)
		if (err != nil) != tt.err || err == nil && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("lineCut(%d) = %+v, %v; want %+v (error %v)", tt.n, got, err, tt.want, tt.err)
		}
	}
}

// TestSourceMendLastLine: a planned cut may end at the file's last byte.
func TestSourceMendLastLine(t *testing.T) {
	for _, content := range []string{"keep\ncut me\n", "keep\ncut me"} {
		root := t.TempDir()
		p := paths.New(root)
		tree.Write(t, root, map[string]string{"/etc/rules": content})
		c, err := lineCut([]byte(content), 2)
		if err != nil {
			t.Fatal(err)
		}
		m := &sourceMend{Path: "/etc/rules", SHA256: digest([]byte(content)), Cuts: []cut{c}}
		if _, err := m.apply(p); err != nil {
			t.Fatalf("%q: %v", content, err)
		}
		if got, _ := os.ReadFile(p.File("/etc/rules")); string(got) != "keep\n" {
			t.Errorf("%q: file after the cut %q, want %q", content, got, "keep\n")
		}
	}
}

// TestPlanAllowFileLiveOnly: a rule with no file is added live, with a note only when a
// front end owns the ruleset.
func TestPlanAllowFileLiveOnly(t *testing.T) {
	p := paths.New(t.TempDir())
	tests := []struct {
		src  firewall.Source
		note string
	}{
		{firewall.Source{}, ""},
		{firewall.Source{FrontEnd: firewall.FrontEndLive}, ""},
		{firewall.Source{FrontEnd: "docker"}, "docker owns this ruleset"},
	}
	for _, tt := range tests {
		var d firewallAllowData
		got := planAllowFile(p, &d, tt.src, "")
		if tt.note == "" && got != "" || !strings.Contains(got, tt.note) || d.File != nil {
			t.Errorf("%+v: note %q (file %+v), want %q and no file", tt.src, got, d.File, tt.note)
		}
	}
}

// TestFirewallAllowNoFileNothingAdded: undoing an allow that added nothing and planned no
// file is nothing to do, never a file undo.
func TestFirewallAllowNoFileNothingAdded(t *testing.T) {
	env := testEnv(t.TempDir(), false)
	for _, data := range []string{`{"backend": "nftables"}`, `{"backend": "nftables", "file": {"path": "/etc/nftables.conf"}}`} {
		if err := (FirewallAllow{}).Undo(context.Background(), env, &Change{Data: json.RawMessage(data)}); err != nil {
			t.Errorf("%s: Undo = %v", data, err)
		}
	}
}

// TestFirewallAllowFirewalldApply: firewall-cmd adding the rich rule is an applied change
// that records it, not a skip.
func TestFirewallAllowFirewalldApply(t *testing.T) {
	tests := []struct {
		fail   string
		status types.Status
		added  bool
	}{
		{"NOTHING", "", true},
		{"*", types.StatusSkipped, false},
	}
	for _, tt := range tests {
		log := fakeFirewallCmd(t, tt.fail)
		c := &Change{Data: json.RawMessage(`{"backend": "nftables", "firewalld": {"policy": "p", "rich_rule": "rule accept"}}`)}
		if err := (FirewallAllow{}).Apply(context.Background(), testEnv(t.TempDir(), false), c); err != nil {
			t.Fatal(err)
		}
		var d firewallAllowData
		if err := json.Unmarshal(c.Data, &d); err != nil {
			t.Fatal(err)
		}
		if c.Status != tt.status || d.Added != tt.added {
			t.Errorf("fail %q: status %q, added %v (log %q); want %q, %v", tt.fail, c.Status, d.Added, readLog(t, log), tt.status, tt.added)
		}
	}
}

// TestFirewallDeleteDuplicateNote: a second copy of a rule from another source adds its
// own note to the change.
func TestFirewallDeleteDuplicateNote(t *testing.T) {
	fakeTools(t, "iptables-nft")
	rule := func(frontEnd string) string {
		return `{backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", spec = "-d 169.254.169.254/32 -j DROP", source = {front_end = "` + frontEnd + `", file = "", line = 0}}`
	}
	args := decodeArgs(t, FirewallDelete{}.Spec(), `rules = [`+rule("")+`, `+rule("docker")+`]`)
	changes, err := FirewallDelete{}.Plan(context.Background(), &Env{}, args)
	if err != nil || len(changes) != 1 {
		t.Fatal(changes, err)
	}
	if want := "made by docker"; !strings.Contains(changes[0].Detail, want) {
		t.Errorf("detail %q, want %q", changes[0].Detail, want)
	}
}

// TestUFWRestoreNumber: a deleted rule goes back at its number when there are that many
// rules, including the last, and is appended when there are fewer.
func TestUFWRestoreNumber(t *testing.T) {
	root := t.TempDir()
	p := paths.New(root)
	tree.Write(t, root, map[string]string{paths.UFWUserRules: "*filter\n### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 22 -j ACCEPT\n### tuple ### allow tcp 443 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 443 -j ACCEPT\nCOMMIT\n"})
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	if err := os.WriteFile(filepath.Join(dir, "ufw"), []byte("#!/bin/sh\necho \"$*\" >> "+log+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":/usr/bin:/bin")
	tests := []struct {
		number int
		want   string
	}{
		{0, "deny out to 169.254.169.254"},
		{1, "insert 1 deny out to 169.254.169.254"},
		{2, "insert 2 deny out to 169.254.169.254"},
		{3, "deny out to 169.254.169.254"},
	}
	for _, tt := range tests {
		_ = os.Remove(log)
		u := &ufwMend{Rule: []string{"deny", "out", "to", "169.254.169.254"}, Number: tt.number}
		if _, err := u.restore(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		if got := readLog(t, log); len(got) != 1 || got[0] != tt.want {
			t.Errorf("number %d: ufw ran %q, want %q", tt.number, got, tt.want)
		}
	}
}

// TestNoProxyApplyFileGone: a file removed between plan and apply is an error, never a
// change taken as done.
func TestNoProxyApplyFileGone(t *testing.T) {
	root := t.TempDir()
	tree.Write(t, root, map[string]string{"etc/environment": "http_proxy=http://p\n"})
	env := testEnv(root, false)
	changes, err := NoProxy{}.Plan(context.Background(), env, filesArg("/etc/environment"))
	if err != nil || len(changes) != 1 {
		t.Fatal(changes, err)
	}
	if err := os.Remove(filepath.Join(root, "etc/environment")); err != nil {
		t.Fatal(err)
	}
	if err := (NoProxy{}).Apply(context.Background(), env, changes[0]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Apply = %v, want the file's absence", err)
	}
}

// TestUFWUserRuleFirstLine: line 1 of a user rules file exists; the note says no rule holds
// it, not that the line is missing.
func TestUFWUserRuleFirstLine(t *testing.T) {
	root := t.TempDir()
	tree.Write(t, root, map[string]string{paths.UFWUserRules: "*filter\nCOMMIT\n"})
	_, _, err := ufwUserRule(paths.New(root), firewall.Source{FrontEnd: "ufw", File: paths.UFWUserRules, Line: 1})
	if err == nil || !strings.Contains(err.Error(), "no ufw rule") {
		t.Errorf("error %v, want one saying no ufw rule holds line 1", err)
	}
}

// TestRestartUnitUnitsRequired: a restart_unit block without units is a policy error.
func TestRestartUnitUnitsRequired(t *testing.T) {
	f, diags := hclsyntax.ParseConfig([]byte(""), "test.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if _, diags := hcldec.Decode(f.Body, RestartUnit{}.Spec(), nil); !diags.HasErrors() {
		t.Error("units may be left out")
	}
}

// TestRateLimitCallerPlansMissingRule: with iptables at hand and the rule not there, Plan
// proposes inserting it.
func TestRateLimitCallerPlansMissingRule(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'iptables v1.8.9 (nf_tables)'; exit 0; }\ncase \" $* \" in *\" -C \"*) exit 1;; esac\nexit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "iptables"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":/usr/bin:/bin")
	root := t.TempDir()
	tree.Write(t, root, map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\npoller:x:1001:1001::/:/bin/sh\n"})
	args := cty.ObjectVal(map[string]cty.Value{"user": cty.StringVal("poller"), "rate": cty.NullVal(cty.String), "burst": cty.NullVal(cty.Number)})
	changes, err := RateLimitCaller{}.Plan(context.Background(), testEnv(root, false), args)
	if err != nil || len(changes) != 1 || changes[0].Target != "ipv4/filter/OUTPUT" {
		t.Fatalf("Plan = %v, %v; want one ipv4 change", changes, err)
	}
}

// fakeIptablesFailing installs an iptables-nft whose -S exits with listExit (0: an empty
// OUTPUT chain) and whose -I fails when the listing does not.
func fakeIptablesFailing(t *testing.T, listExit int) {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'iptables v1.8.9 (nf_tables)'; exit 0; }\n" +
		"case \" $* \" in\n*\" -S \"*) [ " + strconv.Itoa(listExit) + " = 0 ] && { echo '-P OUTPUT ACCEPT'; exit 0; }; echo 'iptables: Resource temporarily unavailable.' >&2; exit " + strconv.Itoa(listExit) + ";;\n" +
		"*\" -I \"*) [ " + strconv.Itoa(listExit) + " = 0 ] || exit 0; echo 'iptables: Resource temporarily unavailable.' >&2; exit 4;;\nesac\nexit 2\n"
	if err := os.WriteFile(filepath.Join(dir, "iptables-nft"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":/usr/bin:/bin")
}

// TestFirewallDeleteIptablesErrors: a spec that does not split, a listing that fails for
// another reason than a missing chain, and an insertion that fails are errors, never
// success.
func TestFirewallDeleteIptablesErrors(t *testing.T) {
	data := func(spec string) *firewallDeleteData {
		return &firewallDeleteData{Backend: "nft", Family: "ipv4", Table: "filter", Chain: "OUTPUT", Spec: spec, Positions: []int{1}}
	}
	t.Run("bad spec", func(t *testing.T) {
		fakeIptablesFailing(t, 0)
		if _, _, err := data(`-d "169.254.169.254`).iptables(); err == nil {
			t.Error("a spec with an open quote splits")
		}
	})
	t.Run("listing fails", func(t *testing.T) {
		fakeIptablesFailing(t, 4)
		if _, err := data("-d 169.254.169.254/32 -j DROP").restoreIptables(); err == nil || !strings.Contains(err.Error(), "Resource temporarily unavailable") {
			t.Errorf("restore = %v, want the listing's failure", err)
		}
	})
	t.Run("insert fails", func(t *testing.T) {
		fakeIptablesFailing(t, 0)
		if _, err := data("-d 169.254.169.254/32 -j DROP").restoreIptables(); err == nil || !strings.Contains(err.Error(), "Resource temporarily unavailable") {
			t.Errorf("restore = %v, want the insertion's failure", err)
		}
	})
}

// TestNoProxyObserveErrorsNotInEffect: a record that does not decode, and a file changed
// with no backup made, are errors that never report the edit as in effect.
func TestNoProxyObserveErrorsNotInEffect(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	tree.Write(t, root, map[string]string{"etc/environment": "http_proxy=http://p\n"})
	env := testEnv(root, false)
	if ok, err := (NoProxy{}).Observe(ctx, env, &Change{Data: json.RawMessage(`{"path": 1`)}); ok || err == nil || !strings.Contains(err.Error(), "decode ledger record") {
		t.Errorf("Observe of a bad record = %v, %v; want false and an error", ok, err)
	}
	data, _ := json.Marshal(noProxyData{Path: "/etc/environment", SHA256: strings.Repeat("0", 64)})
	if ok, err := (NoProxy{}).Observe(ctx, env, &Change{Data: data}); ok || err == nil || !strings.Contains(err.Error(), "no backup of it was made") {
		t.Errorf("Observe of a changed file without backup = %v, %v; want false and why", ok, err)
	}
}

// TestFirewallAllowNftRemoveObserve: with nft, Observe finds the ACCEPT the chain holds,
// and remove deletes it by its handle and says what it ran.
func TestFirewallAllowNftRemoveObserve(t *testing.T) {
	ctx := context.Background()
	log := fakeNft(t, `{"nftables": [`+nftRuleJSON(3, "10.0.0.1")+`, `+nftRuleJSON(9, "169.254.169.254")+`]}`, "")
	d := firewallAllowData{Backend: "nftables", Family: "ipv4", Table: "inet t", Chain: "out", Spec: "ip daddr 169.254.169.254 drop"}
	data, _ := json.Marshal(d)
	if ok, err := (FirewallAllow{}).Observe(ctx, &Env{}, &Change{Data: data}); !ok || err != nil {
		t.Errorf("Observe = %v, %v; want in effect", ok, err)
	}
	ran, err := d.remove(ctx)
	if err != nil || !strings.HasSuffix(ran, "delete rule inet t out handle 9") {
		t.Errorf("remove = %q, %v; want the delete of handle 9", ran, err)
	}
	if calls, _ := os.ReadFile(log); !strings.Contains(string(calls), "delete rule inet t out handle 9") {
		t.Errorf("nft calls %q; want the delete of handle 9", calls)
	}
}

// TestFirewallAllowIptablesBefore: the ACCEPT goes in just before the rule it was planned
// against, in the shapes planAllow records (the rule's spec and words without -A CHAIN);
// when that rule is gone, nothing is added and the change is skipped.
func TestFirewallAllowIptablesBefore(t *testing.T) {
	const other = "-A OUTPUT -d 10.0.0.0/8 -j ACCEPT"
	const drop = "-A OUTPUT -d 169.254.169.254/32 -j DROP"
	const accept = "-A OUTPUT -d 169.254.169.254/32 -j ACCEPT"
	tests := []struct {
		name      string
		chain     []string
		wantRan   string
		wantSkip  bool
		wantChain []string
	}{
		{"before present", []string{other, drop}, "iptables-nft -t filter -I OUTPUT 2 -d 169.254.169.254/32 -j ACCEPT", false, []string{other, accept, drop}},
		{"before gone", []string{other}, "", true, []string{other}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain, _ := fakeIptables(t, tt.chain, -1)
			d := firewallAllowData{Backend: "nft", Family: "ipv4", Table: "filter", Chain: "OUTPUT",
				Before: "-d 169.254.169.254/32 -j DROP", Spec: "-d 169.254.169.254/32 -j ACCEPT",
				Words: []string{"-d", "169.254.169.254/32", "-j", "ACCEPT"}}
			ran, err := d.insertIptables()
			var skip *skipError
			if ran != tt.wantRan || errors.As(err, &skip) != tt.wantSkip || !tt.wantSkip && err != nil ||
				tt.wantSkip && !strings.Contains(err.Error(), "no longer holds") {
				t.Errorf("insertIptables = %q, %v; want %q, skipped %v", ran, err, tt.wantRan, tt.wantSkip)
			}
			if got := chain(); !slices.Equal(got, tt.wantChain) {
				t.Errorf("chain %q; want %q", got, tt.wantChain)
			}
		})
	}
}

// TestPlanAllowFileEmptyFile: a persisted file that is empty now takes the ACCEPT as its
// one line, with no newline put before it.
func TestPlanAllowFileEmptyFile(t *testing.T) {
	root := t.TempDir()
	p := paths.New(root)
	tree.Write(t, root, map[string]string{"etc/iptables/rules.v4": ""})
	var d firewallAllowData
	src := firewall.Source{FrontEnd: firewall.FrontEndNetfilterPersistent, File: "/etc/iptables/rules.v4", Line: 1}
	if note := planAllowFile(p, &d, src, "-A OUTPUT -d 169.254.169.254/32 -j ACCEPT"); note != "" {
		t.Fatalf("note %q, want none", note)
	}
	if d.File == nil || len(d.File.Cuts) != 1 || d.File.Cuts[0].Start != 0 || strings.HasPrefix(d.File.Cuts[0].Insert, "\n") {
		t.Errorf("file edit %+v; want one insert at the start, with no newline before it", d.File)
	}
}
