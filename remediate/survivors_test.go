package remediate

// Tests that kill the survivors of `make mutate` (docs/testing.md) in the fixers.

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/facts/cloudinit"
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
