package firewall

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/tests/harness"
)

// inNetns reports whether the test runs in a network namespace of its own; when it does
// not, it runs the test again in a new one (unshare --net, so the whole process is there:
// Read's goroutines and the tools it starts included) and returns false. Only root can.
func inNetns(tb testing.TB, flag string) bool {
	tb.Helper()
	if os.Getenv("IMDSMEND_TEST_NETNS") == "1" {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			tb.Fatalf("ip link set lo up: %v: %s", err, out)
		}
		return true
	}
	if os.Geteuid() != 0 {
		tb.Skip("needs root to create a network namespace")
	}
	cmd := exec.Command("unshare", "--net", os.Args[0], flag+"=^"+strings.Split(tb.Name(), "/")[0]+"$", "-test.v")
	if flag == "-test.bench" {
		cmd.Args = append(cmd.Args, "-test.run=^$", "-test.benchmem")
	}
	cmd.Env = append(os.Environ(), "IMDSMEND_TEST_NETNS=1")
	if _, ok := tb.(*testing.B); ok {
		// The figures are the point: straight to the output, which a log would cut short.
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			tb.Fatalf("in a new network namespace: %v", err)
		}
		return false
	}
	out, err := cmd.CombinedOutput()
	tb.Logf("in a new network namespace:\n%s", out)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return false
}

func run(tb testing.TB, name string, args ...string) {
	tb.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		tb.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// TestGenerationFollowsTheRuleset: every change to a rule (nftables, iptables-nft, legacy
// iptables of either family), to the route IMDS traffic takes or to the user files is a new
// generation; traffic, which only moves counters, is not.
func TestGenerationFollowsTheRuleset(t *testing.T) {
	if !inNetns(t, "-test.run") {
		return
	}
	cfg := Config{Paths: paths.New(t.TempDir())}
	gen := func() generation {
		t.Helper()
		g, err := currentGeneration(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	steps := []struct {
		name    string
		change  func()
		changes bool
	}{
		{"nothing", func() {}, false},
		{"nft table", func() { run(t, "nft", "add table inet t") }, true},
		{"iptables-nft rule", func() { run(t, "iptables-nft", "-A", "OUTPUT", "-d", "10.0.0.1", "-j", "ACCEPT") }, true},
		{"legacy rule", func() { run(t, "iptables-legacy", "-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT") }, true},
		{"legacy counters", func() { traffic(t) }, false},
		{"legacy rule replaced by one of the same size", func() { run(t, "iptables-legacy", "-R", "OUTPUT", "1", "-o", "lo", "-j", "DROP") }, true},
		{"legacy IPv6 rule", func() { run(t, "ip6tables-legacy", "-A", "OUTPUT", "-d", "fd00::1", "-j", "ACCEPT") }, true},
		{"legacy chain policy", func() { run(t, "iptables-legacy", "-P", "FORWARD", "DROP") }, true},
		{"route to IMDS", func() { run(t, "ip", "route", "add", "local", "169.254.169.254", "dev", "lo") }, true},
		{"group file", func() {
			if err := os.MkdirAll(cfg.Paths.File("/etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cfg.Paths.File(groupFile), []byte("imds:x:990:\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	before := gen()
	for _, s := range steps {
		s.change()
		after := gen()
		if (after != before) != s.changes {
			t.Errorf("%s: generation changed %v, want %v\nbefore %+v\nafter  %+v", s.name, after != before, s.changes, before, after)
		}
		before = after
	}
}

// traffic sends a datagram over lo and checks the legacy OUTPUT rule counted it.
func traffic(t *testing.T) {
	t.Helper()
	c, err := net.Dial("udp", "127.0.0.1:9")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("counted")); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("iptables-legacy-save", "-c").Output()
	if err != nil || !strings.Contains(string(out), "-A OUTPUT -o lo -j ACCEPT") || strings.Contains(string(out), "[0:0] -A OUTPUT") {
		t.Fatalf("the rule did not count the traffic (%v):\n%s", err, out)
	}
}

// TestMemoReadsOnlyWhenChanged: the second read of an unchanged ruleset is the first's
// facts without reading again; a change reads again.
func TestMemoReadsOnlyWhenChanged(t *testing.T) {
	if !inNetns(t, "-test.run") {
		return
	}
	reads := 0
	m := &Memo{read: func(ctx context.Context, cfg Config) (*Firewall, error) {
		reads++
		return Read(ctx, cfg)
	}}
	cfg := Config{Paths: paths.New(t.TempDir())}
	read := func() *Firewall {
		t.Helper()
		fw, err := m.Read(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return fw
	}
	run(t, "iptables-nft", "-A", "OUTPUT", "-d", "169.254.169.254", "-j", "REJECT")
	first := read()
	if second := read(); reads != 1 || len(second.Rules) != 1 || second.Rules[0] != first.Rules[0] {
		t.Errorf("unchanged: %d reads, rules %+v, want 1 read and %+v", reads, second.Rules, first.Rules)
	}
	first.Rules[0].Spec = "changed by a caller"
	if third := read(); third.Rules[0].Spec == first.Rules[0].Spec {
		t.Error("a caller's change to its facts reached the next read")
	}
	run(t, "iptables-nft", "-D", "OUTPUT", "-d", "169.254.169.254", "-j", "REJECT")
	if fw := read(); reads != 2 || len(fw.Rules) != 0 {
		t.Errorf("after deleting the rule: %d reads, rules %+v; want 2 reads and none", reads, fw.Rules)
	}
	if fw := read(); reads != 2 || len(fw.Rules) != 0 {
		t.Errorf("unchanged again: %d reads, rules %+v; want 2 reads and none", reads, fw.Rules)
	}
}

// BenchmarkMemoUnchanged is a watch pass's firewall facts on a kube-proxy node (4,000
// services: 24,000 iptables rules, or kube-proxy's nftables-mode tables) whose ruleset did
// not change since the previous pass (issue 16: under 5 ms), next to the read it saves.
func BenchmarkMemoUnchanged(b *testing.B) {
	if !inNetns(b, "-test.bench") {
		return
	}
	node := harness.KubeProxy{Services: 4000, Endpoints: 1}
	for _, mode := range []struct {
		name, tool, rules string
		args              []string
	}{
		{"iptables", "iptables-nft-restore", node.Iptables(), nil},
		{"nft", "nft", node.Nft(), []string{"-f", "-"}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			run(b, "nft", "flush ruleset")
			cmd := exec.Command(mode.tool, mode.args...)
			cmd.Stdin = strings.NewReader(mode.rules)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("load the kube-proxy layout: %v: %s", err, out)
			}
			cfg := Config{Paths: paths.New(b.TempDir())}
			b.Run("first", func(b *testing.B) {
				for b.Loop() {
					if _, err := (&Memo{}).Read(context.Background(), cfg); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("unchanged", func(b *testing.B) {
				m := &Memo{}
				if _, err := m.Read(context.Background(), cfg); err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					if _, err := m.Read(context.Background(), cfg); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// TestPresentTablesNames: an ip or ip6 table named as iptables-nft names its tables is
// iptables-nft's; any other is native nftables.
func TestPresentTablesNames(t *testing.T) {
	if !inNetns(t, "-test.run") {
		return
	}
	tests := []struct {
		table       string // family and name
		wantPresent string
		wantNative  bool
	}{
		{"ip filter", "nft/ipv4", false},
		{"ip nat", "nft/ipv4", false},
		{"ip mangle", "nft/ipv4", false},
		{"ip raw", "nft/ipv4", false},
		{"ip security", "nft/ipv4", false},
		{"ip6 mangle", "nft/ipv6", false},
		{"ip imds", "", true},
		{"inet filter", "", true},
	}
	for _, tt := range tests {
		run(t, "nft", "flush ruleset")
		run(t, "nft", "add table "+tt.table)
		_, present, native, err := presentTables()
		if err != nil {
			t.Fatalf("%s: %v", tt.table, err)
		}
		if native != tt.wantNative {
			t.Errorf("%s: native = %v, want %v", tt.table, native, tt.wantNative)
		}
		for _, p := range []string{"nft/ipv4", "nft/ipv6"} {
			if present[p] != (p == tt.wantPresent) {
				t.Errorf("%s: present[%s] = %v, want %v", tt.table, p, present[p], p == tt.wantPresent)
			}
		}
	}
}

// TestReadChainsAnswers: with only iptables-nft rules, the chain walk answers alone when
// nothing on IMDS's path stops it, and leaves a rule to report to the full read.
func TestReadChainsAnswers(t *testing.T) {
	if !inNetns(t, "-test.run") {
		return
	}
	steps := []struct {
		name   string
		args   []string
		wantOK bool
	}{
		{"a rule off IMDS's path", []string{"-A", "OUTPUT", "-d", "10.0.0.1", "-j", "DROP"}, true},
		{"a mangle rule off IMDS's path", []string{"-t", "mangle", "-A", "OUTPUT", "-d", "10.0.0.1", "-j", "MARK", "--set-mark", "1"}, true},
		{"a rule dropping IMDS", []string{"-A", "OUTPUT", "-d", "169.254.169.254", "-j", "DROP"}, false},
	}
	for _, s := range steps {
		run(t, "iptables-nft", s.args...)
		fw, ok := readChains(context.Background(), testUsers, ec2Packets)
		if ok != s.wantOK {
			t.Fatalf("after %s: readChains ok = %v, want %v", s.name, ok, s.wantOK)
		}
		if ok && (len(fw.Rules) != 0 || len(fw.Sources) != 1 || fw.Sources[0] != "nft/ipv4") {
			t.Errorf("after %s: rules %v sources %v, want none from nft/ipv4", s.name, fw.Rules, fw.Sources)
		}
	}
}
