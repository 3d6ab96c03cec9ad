package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imdsmend/imdsmend"
	"github.com/imdsmend/imdsmend/tests/harness"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
	"github.com/imdsmend/imdsmend/tests/tree"
)

// hourly makes every pass after the first one an event's: the timer's is an hour away.
const hourly = "settings {\n  interval = \"1h\"\n  probe_timeout = \"500ms\"\n}\n"

// eventWatch is an `imdsmend watch` in a namespace whose passes the test follows through
// its sd_notify messages: one STATUS= per pass.
type eventWatch struct {
	*watchProc
	n *notifySocket
}

// startEventWatch starts watch with args (after "watch") in ns, with a private /run, and
// waits for its first pass, healthy.
func startEventWatch(t *testing.T, ns *harness.Namespace, wrapper []string, args ...string) *eventWatch {
	t.Helper()
	n := listenNotify(t)
	argv := append(append(wrapper, bins.Imdsmend, "watch"), args...)
	name, hargs := hermetic(argv[0], argv[1:]...)
	cmd := ns.Command(context.Background(), name, hargs...)
	cmd.Env = harness.Environ("NOTIFY_SOCKET=" + n.path)
	w := &eventWatch{startWatch(t, cmd), n}
	ready, err := n.waitFor(within(t, 30*time.Second), "READY=1")
	if err != nil {
		t.Fatalf("%v\n%s", err, w.stderr.String())
	}
	if s := status(ready); !strings.HasPrefix(s, "healthy") {
		t.Fatalf("first pass: %q\n%s", s, w.stderr.String())
	}
	return w
}

// mended waits for the first pass that fixed something and is healthy again; it returns
// how many passes came before it since the last call.
func (w *eventWatch) mended(t *testing.T) (before int) {
	t.Helper()
	for {
		s := status(w.n.expect(t, 30*time.Second, "STATUS="))
		if !strings.Contains(s, "last fix never") {
			if !strings.HasPrefix(s, "healthy") {
				t.Fatalf("the pass that fixed something left IMDS unhealthy: %q\n%s", s, w.stderr.String())
			}
			return before
		}
		before++
	}
}

// TestWatchEventsMend: with an hour between timed passes, watch mends each blocker as soon
// as it appears: the change's event (nftables for iptables-nft and nft rules, the legacy
// tables' checksum once the xtables lock is let go, a route change over netlink,
// /etc/environment over inotify) starts the pass. The time from the change to the healed pass's status is logged.
func TestWatchEventsMend(t *testing.T) {
	tests := []struct {
		name  string
		bed   func(ctx context.Context, t *testing.T) *harness.Namespace
		maker harness.Maker
		allow string // a drop-in the fix needs
	}{
		{"iptables-nft REJECT", simBed, harness.RejectIMDS, ""},
		{"nft rule", simBed, harness.NftRejectIMDS, ""},
		{"iptables-legacy REJECT", simBed, harness.LegacyRejectIMDS, ""},
		{"route removal", instanceBed, harness.NoRouteIMDS, allowRoutes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The watch's /run is its own (hermetic): the xtables lock that tells it a legacy
			// iptables command is done must be one the maker's iptables takes too.
			t.Setenv("XTABLES_LOCKFILE", filepath.Join(t.TempDir(), "xtables.lock"))
			ctx := testContext(t)
			ns := tt.bed(ctx, t)
			r := newRun(t, ns)
			r.dropIn("50-events.hcl", hourly)
			if tt.allow != "" {
				r.dropIn("60-allow.hcl", tt.allow)
			}
			w := startEventWatch(t, ns, nil, "--policy", r.policy, "--state-dir", r.stateDir)
			start := time.Now()
			if err := tt.maker.Make(ctx, ns); err != nil {
				t.Fatal(err)
			}
			w.mended(t)
			t.Logf("%s: change → healed pass reported in %v", tt.name, time.Since(start).Round(time.Millisecond))
			if err := tt.maker.Gone(ctx, ns); err != nil {
				t.Errorf("%v\n%s", err, w.stderr.String())
			}
		})
	}
}

// simBed is a namespace with the simulator serving IMDS.
func simBed(ctx context.Context, t *testing.T) *harness.Namespace {
	t.Helper()
	ns := newNamespace(t)
	if _, err := harness.StartSim(ctx, ns, bins.Imdssim, sim.FaultOK); err != nil {
		t.Fatal(err)
	}
	return ns
}

// TestWatchEventsProxyFile: a proxy line appended to /etc/environment (in a --root tree) is
// mended by the pass its inotify event starts, with an hour between timed passes.
func TestWatchEventsProxyFile(t *testing.T) {
	ctx := testContext(t)
	ns := simBed(ctx, t)
	root := t.TempDir()
	tree.Write(t, root, map[string]string{
		"etc/environment":                     "PATH=\"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"\n",
		"etc/imdsmend/policy.hcl":             string(imdsmend.DefaultPolicy),
		"etc/imdsmend/policy.d/50-events.hcl": hourly,
	})
	w := startEventWatch(t, ns, nil, "--root", root, "--policy", "/etc/imdsmend/policy.hcl", "--state-dir", "/state")
	start := time.Now()
	f, err := os.OpenFile(filepath.Join(root, "etc/environment"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("http_proxy=http://proxy.example:3128\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	w.mended(t)
	t.Logf("proxy line: change → healed pass reported in %v", time.Since(start).Round(time.Millisecond))
	data, err := os.ReadFile(filepath.Join(root, "etc/environment"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "no_proxy=") || !strings.Contains(string(data), "169.254.169.254") {
		t.Errorf("/etc/environment not mended:\n%s\n%s", data, w.stderr.String())
	}
}

// TestWatchEventsStorm: a thousand nftables transactions in a row cost one pass, not a
// thousand. The storm's rules don't concern IMDS; a REJECT added right after it is the
// marker: before the pass that mends it there is at most the storm's one pass (none when
// the REJECT joined the storm's).
func TestWatchEventsStorm(t *testing.T) {
	ctx := testContext(t)
	ns := simBed(ctx, t)
	for _, args := range [][]string{
		{"add", "table", "inet", "storm"},
		{"add", "chain", "inet", "storm", "out", "{ type filter hook output priority 0; policy accept; }"},
	} {
		if res, err := ns.Exec(ctx, nil, "nft", args...); err != nil || res.ExitCode != 0 {
			t.Fatalf("nft %v: %v %s", args, err, res.Stderr)
		}
	}
	r := newRun(t, ns)
	r.dropIn("50-events.hcl", hourly)
	w := startEventWatch(t, ns, nil, "--policy", r.policy, "--state-dir", r.stateDir)

	// nft -i commits each line as a transaction of its own.
	var lines strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&lines, "add rule inet storm out ip daddr 10.77.%d.%d tcp dport 443 accept\n", i/250, i%250)
	}
	cmd := ns.Command(ctx, "nft", "-i")
	cmd.Stdin = strings.NewReader(lines.String())
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -i: %v: %s", err, out)
	}
	took := time.Since(start)
	if err := harness.RejectIMDS.Make(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if before := w.mended(t); before > 1 {
		t.Errorf("the storm of 1,000 transactions (%v) cost %d passes, want 1", took.Round(time.Millisecond), before)
	}
	res, err := ns.Exec(ctx, nil, "nft", "list", "chain", "inet", "storm", "out")
	if err != nil || strings.Count(res.Stdout, "dport 443 accept") != 1000 {
		t.Errorf("the storm did not leave its 1,000 rules: %v\n%s", err, res.Stdout)
	}
}

// TestWatchEventsSourceFails: without CAP_NET_RAW the legacy tables can't be read, so their
// source can't start: watch says so in a warning and goes on with its timed passes.
func TestWatchEventsSourceFails(t *testing.T) {
	ctx := testContext(t)
	ns := simBed(ctx, t)
	// A legacy table, so the source has one to read.
	if res, err := ns.Exec(ctx, nil, "iptables-legacy", "-A", "OUTPUT", "-d", "10.9.9.9/32", "-j", "ACCEPT"); err != nil || res.ExitCode != 0 {
		t.Fatalf("iptables-legacy: %v %s", err, res.Stderr)
	}
	r := newRun(t, ns)
	r.dropIn("50-events.hcl", "settings {\n  interval = \"1s\"\n  probe_timeout = \"500ms\"\n}\n")
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) is not installed")
	}
	w := startEventWatch(t, ns, []string{"setpriv", "--bounding-set", "-net_raw", "--"},
		"--only", "imds_unreachable", "--policy", r.policy, "--state-dir", r.stateDir)
	// Timed passes go on: two more.
	w.n.expect(t, 30*time.Second, "STATUS=")
	w.n.expect(t, 30*time.Second, "STATUS=")
	want := "WARNING event source iptables-legacy: open a socket to read legacy tables: "
	if out := w.stderr.String(); !strings.Contains(out, want) || !strings.Contains(out, "its changes are seen at the interval (1s) instead") {
		t.Errorf("stderr lacks the warning %q:\n%s", want, out)
	}
}
