package remediate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/facts/firewall"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/internal/types"
)

func breakerPaths(t *testing.T) paths.Paths {
	t.Helper()
	p := paths.New(t.TempDir())
	p.StateDir = "/var/lib/imdsmend"
	return p
}

// TestBreakerHold: with reapplies = 3, a fix applied 4 times within the window (once and
// re-applied 3 times) is held, as a fifth application would be a 4th re-application; one
// applied 3 times is not. Times older than the window do not count; a held fix stays held
// whatever the window says.
func TestBreakerHold(t *testing.T) {
	now := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	window := 10 * time.Minute
	ago := func(ds ...time.Duration) []time.Time {
		var out []time.Time
		for _, d := range ds {
			out = append(out, now.Add(-d))
		}
		return out
	}
	tests := []struct {
		name      string
		reapplies int
		applied   []time.Time
		held      bool
		want      bool
	}{
		{"never applied", 3, nil, false, false},
		{"applied 3 times", 3, ago(3*time.Minute, 2*time.Minute, time.Minute), false, false},
		{"applied 4 times: a 4th re-application would be one too many", 3, ago(4*time.Minute, 3*time.Minute, 2*time.Minute, time.Minute), false, true},
		{"applied 4 times, one at the window's edge", 3, ago(window, 3*time.Minute, 2*time.Minute, time.Minute), false, true},
		{"applied 4 times, one just before the window", 3, ago(window+time.Second, 3*time.Minute, 2*time.Minute, time.Minute), false, false},
		{"held before, nothing in the window", 3, nil, true, true},
		{"reapplies 0: once per window", 0, ago(time.Minute), false, true},
		{"reapplies 0, applied before the window", 0, ago(window + time.Minute), false, false},
		{"reapplies 1, applied once", 1, ago(time.Minute), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := LoadBreaker(breakerPaths(t), tt.reapplies, window, "p1")
			c := &Change{ID: "mark-1", Rule: "r", Kind: "mark", Target: "/x", Status: types.StatusPlanned}
			h := &fixHistory{Rule: "r", Kind: "mark", Target: "/x", Applied: tt.applied}
			if tt.held {
				h.Held = &now
			}
			b.state.Fixes[fixKey(c)] = h
			other := &Change{ID: "mark-2", Rule: "r", Kind: "mark", Target: "/y", Status: types.StatusPlanned}
			loops := b.Hold([]*Change{c, other}, nil, now)
			if got := c.Status == types.StatusSkipped; got != tt.want || len(loops) != btoi(tt.want) {
				t.Errorf("held %v (status %s, %d loops), want %v", got, c.Status, len(loops), tt.want)
			}
			if other.Status != types.StatusPlanned {
				t.Errorf("a fix with no history was held: %s", other.Status)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestBreakerHistory: the history survives a new Breaker on the same state directory,
// leaves state.json's other keys alone, starts over under another policy, and reset clears
// it.
func TestBreakerHistory(t *testing.T) {
	p := breakerPaths(t)
	file := p.State("state.json")
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(`{"nic": {"time": "2026-12-01T05:00:00Z"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	// An nft rule put back has a new handle and is the same fix.
	fix := func(handle int) *Change {
		return &Change{Rule: "firewall_blocks_imds", Kind: "firewall_delete", Status: types.StatusPlanned,
			Target: "nftables/inet t/out/handle " + string(rune('0'+handle)) + ": ip daddr 169.254.169.254 drop"}
	}
	for i := range 2 {
		b := LoadBreaker(p, 1, time.Hour, "p1")
		c := fix(i + 2)
		if loops := b.Hold([]*Change{c}, nil, now); len(loops) != 0 {
			t.Fatalf("run %d: held after %d applications", i+1, i)
		}
		c.Status = types.StatusApplied
		b.Record([]*Change{c}, now)
		if err := b.Save(); err != nil {
			t.Fatal(err)
		}
	}
	c := fix(7)
	if loops := LoadBreaker(p, 1, time.Hour, "p1").Hold([]*Change{c}, nil, now); len(loops) != 1 || c.Status != types.StatusSkipped {
		t.Fatalf("third run: %d loops, status %s; want the fix held", len(loops), c.Status)
	}
	if c := fix(8); len(LoadBreaker(p, 1, time.Hour, "p2").Hold([]*Change{c}, nil, now)) != 0 {
		t.Errorf("a new policy kept the history")
	}
	var doc map[string]json.RawMessage
	data, _ := os.ReadFile(file)
	if err := json.Unmarshal(data, &doc); err != nil || doc["nic"] == nil || doc["breaker"] == nil {
		t.Fatalf("state.json %s (%v); want the nic and breaker keys", data, err)
	}
	released, err := ResetBreaker(p)
	if err != nil || len(released) != 0 {
		// Held only in memory above: nothing held was saved.
		t.Fatalf("reset: %v, released %q", err, released)
	}
	if c := fix(9); len(LoadBreaker(p, 1, time.Hour, "p1").Hold([]*Change{c}, nil, now)) != 0 {
		t.Errorf("held after reset")
	}
	data, _ = os.ReadFile(file)
	if strings.Contains(string(data), "breaker") || !strings.Contains(string(data), "nic") {
		t.Errorf("state.json after reset: %s", data)
	}
}

// TestReaddedBy: a held firewall rule whose facts name a front end and file says so.
func TestReaddedBy(t *testing.T) {
	reject := firewall.Rule{Backend: "nft", Family: "ipv4", Table: "filter", Chain: "OUTPUT", Spec: "-d 169.254.169.254/32 -p tcp -j REJECT"}
	fromFile := reject
	fromFile.Source = firewall.Source{FrontEnd: firewall.FrontEndNetfilterPersistent, File: "/etc/iptables/rules.v4", Line: 3}
	fromUFW := reject
	fromUFW.Source = firewall.Source{FrontEnd: firewall.FrontEndUFW}
	live := reject
	live.Source = firewall.Source{FrontEnd: firewall.FrontEndLive}
	otherChain := fromFile
	otherChain.Chain = "FORWARD"
	tests := []struct {
		name  string
		rules []firewall.Rule
		want  string
	}{
		{"in rules.v4", []firewall.Rule{otherChain, fromFile}, "netfilter-persistent: the rule is in /etc/iptables/rules.v4 (line 3), which it loads at boot"},
		{"made by ufw, in no file", []firewall.Rule{fromUFW}, "ufw made the rule"},
		{"added by hand", []firewall.Rule{live}, ""},
		{"the same rule in another chain", []firewall.Rule{otherChain}, ""},
	}
	data, _ := json.Marshal(firewallDeleteData{Backend: "nft", Family: "ipv4", Table: "filter", Chain: "OUTPUT", Spec: reject.Spec})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &facts.Facts{Firewall: &firewall.Firewall{Rules: tt.rules}}
			if got := readdedBy(paths.Paths{}, f, &Change{Kind: "firewall_delete", Data: data}); got != tt.want {
				t.Errorf("readdedBy = %q, want %q", got, tt.want)
			}
		})
	}
	if got := readdedBy(paths.Paths{}, nil, &Change{Kind: "firewall_delete", Data: data}); got != "" {
		t.Errorf("without facts: %q", got)
	}
}

// TestBreakerWritesOnlyChanges: a pass that applies nothing and holds nothing leaves
// state.json alone; one that applies a fix writes it.
func TestBreakerWritesOnlyChanges(t *testing.T) {
	p := breakerPaths(t)
	now := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	pass := func(status types.Status) bool {
		t.Helper()
		b := LoadBreaker(p, 3, time.Hour, "p1")
		c := &Change{Rule: "r", Kind: "mark", Target: "/x", Status: types.StatusPlanned}
		b.Hold([]*Change{c}, nil, now)
		c.Status = status
		b.Record([]*Change{c}, now)
		if err := b.Save(); err != nil {
			t.Fatal(err)
		}
		_, err := os.Stat(p.State("state.json"))
		return err == nil
	}
	if pass(types.StatusFailed) {
		t.Errorf("a pass that applied nothing wrote state.json")
	}
	if !pass(types.StatusApplied) {
		t.Errorf("a pass that applied a fix did not write state.json")
	}
}

// TestReaddedByFileWriters: a held file fix names the processes that hold the file open for
// writing (fdinfo flags), with their units, and not those that only read it.
func TestReaddedByFileWriters(t *testing.T) {
	type proc struct {
		pid, comm, cgroup, link, flags string
	}
	tests := []struct {
		name  string
		procs []proc
		want  string
	}{
		{"a writer in a unit", []proc{{"42", "chef-client", "0::/system.slice/chef-client.service\n", "/etc/environment", "0100001"}},
			"PID 42 (chef-client) of chef-client.service held /etc/environment open for writing as the fix was due again"},
		{"read-write, outside a unit", []proc{{"7", "vi", "0::/\n", "/etc/environment", "02"}},
			"PID 7 (vi) held /etc/environment open for writing as the fix was due again"},
		{"a reader", []proc{{"42", "cat", "0::/system.slice/x.service\n", "/etc/environment", "0100000"}}, ""},
		{"another file", []proc{{"42", "chef-client", "", "/etc/profile", "0100001"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := breakerPaths(t)
			for _, pr := range tt.procs {
				dir := p.File("/proc/" + pr.pid)
				for _, d := range []string{"fd", "fdinfo"} {
					if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
						t.Fatal(err)
					}
				}
				for name, content := range map[string]string{"comm": pr.comm + "\n", "cgroup": pr.cgroup, "fdinfo/3": "pos:\t0\nflags:\t" + pr.flags + "\n"} {
					if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.Symlink(pr.link, filepath.Join(dir, "fd", "3")); err != nil {
					t.Fatal(err)
				}
			}
			if got := readdedBy(p, nil, &Change{Kind: "no_proxy", Target: "/etc/environment"}); got != tt.want {
				t.Errorf("readdedBy = %q, want %q", got, tt.want)
			}
		})
	}
}
