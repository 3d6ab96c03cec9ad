package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imdsmend/imdsmend/internal/redact"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/tests/harness"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// watchProc is a running `imdsmend watch`.
type watchProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	stderr syncBuffer
	done   chan struct{}
	err    error
}

// watchScript sets WATCHDOG_PID to the shell's PID, which exec hands on to imdsmend, as
// systemd sets it to the service's main PID.
const watchScript = `WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"`

// watchArgs are the arguments of sh -c watchScript for r's policy and state.
func watchArgs(r *run, extra ...string) []string {
	return append([]string{"-c", watchScript, "sh", bins.Imdsmend, "watch", "--policy", r.policy, "--state-dir", r.stateDir}, extra...)
}

// startWatch starts cmd (built by the caller inside a namespace) and stops it with the test.
func startWatch(t testing.TB, cmd *exec.Cmd) *watchProc {
	t.Helper()
	w := &watchProc{t: t, cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = &w.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.err = cmd.Wait(); close(w.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-w.done
	})
	return w
}

func (w *watchProc) signal(sig syscall.Signal) {
	w.t.Helper()
	if err := w.cmd.Process.Signal(sig); err != nil {
		w.t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits for the process to end within d and returns its exit code.
func (w *watchProc) wait(d time.Duration) int {
	w.t.Helper()
	select {
	case <-w.done:
	case <-time.After(d):
		w.t.Fatalf("imdsmend watch still runs %s after being told to stop\nstderr:\n%s", d, w.stderr.String())
	}
	if ee, ok := w.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if w.err != nil {
		w.t.Fatal(w.err)
	}
	return 0
}

func TestWatchNotifySequence(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	if _, err := harness.StartSim(ctx, ns, bins.Imdssim, sim.FaultOK); err != nil {
		t.Fatal(err)
	}
	r := newRun(t, ns)
	n := listenNotify(t)
	name, args := hermetic("sh", watchArgs(r)...)
	cmd := ns.Command(context.Background(), name, args...)
	cmd.Env = harness.Environ("NOTIFY_SOCKET="+n.path, "WATCHDOG_USEC=400000")
	w := startWatch(t, cmd)

	ready := n.expect(t, 20*time.Second, "READY=1")
	if s := status(ready); !strings.HasPrefix(s, "healthy; 0 open findings; IMDS ok; last fix never") {
		t.Errorf("first READY status %q", s)
	}
	// WATCHDOG=1 every 200 ms (half of WATCHDOG_USEC), for this PID.
	for range 2 {
		n.expect(t, 5*time.Second, "WATCHDOG=1")
	}

	// A good new policy: RELOADING, READY, then a pass with it.
	r.dropIn("50-interval.hcl", "settings {\n  interval = \"10m\"\n}\n")
	w.signal(syscall.SIGHUP)
	n.expect(t, 10*time.Second, "RELOADING=1")
	if s := status(n.expect(t, 10*time.Second, "READY=1")); strings.Contains(s, "rejected") {
		t.Errorf("good policy reported as rejected: %q", s)
	}
	n.expect(t, 20*time.Second, "STATUS=healthy")

	// A broken one is rejected: READY again, the status says so, the old policy goes on.
	r.dropIn("90-broken.hcl", "rule \"broken\" {\n  when = facts.imds.class ==\n}\n")
	w.signal(syscall.SIGHUP)
	n.expect(t, 10*time.Second, "RELOADING=1")
	if s := status(n.expect(t, 10*time.Second, "READY=1")); !strings.Contains(s, "policy reload rejected") {
		t.Errorf("rejected reload status %q", s)
	}

	w.signal(syscall.SIGTERM)
	n.expect(t, 10*time.Second, "STOPPING=1")
	if code := w.wait(10 * time.Second); code != 0 {
		t.Errorf("watch exit %d after SIGTERM, want 0\n%s", code, w.stderr.String())
	}
	msgs := n.received()
	if last := msgs[len(msgs)-1]; !strings.HasPrefix(last, "STOPPING=1") {
		t.Errorf("last message %q, want STOPPING=1 (all: %q)", last, msgs)
	}
	// Without journald the entries are text on stderr, complete once the process ended.
	if !strings.Contains(w.stderr.String(), "90-broken.hcl:2") {
		t.Errorf("the rejection does not name file:line:\n%s", w.stderr.String())
	}
}

func TestWatchStopsMidPass(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	s, err := harness.StartSim(ctx, ns, bins.Imdssim, sim.FaultOK)
	if err != nil {
		t.Fatal(err)
	}
	r := newRun(t, ns)
	// Left alone, a pass against a hung IMDS would take probe_timeout: 40s.
	r.dropIn("50-slow.hcl", "settings {\n  interval = \"10m\"\n  probe_timeout = \"40s\"\n}\n")
	n := listenNotify(t)
	name, args := hermetic("sh", watchArgs(r, "--timeout", "50s")...)
	cmd := ns.Command(context.Background(), name, args...)
	cmd.Env = harness.Environ("NOTIFY_SOCKET=" + n.path)
	w := startWatch(t, cmd)
	n.expect(t, 20*time.Second, "READY=1")

	if err := s.Admin.SetConfig(ctx, sim.Config{Fault: sim.FaultHang}); err != nil {
		t.Fatal(err)
	}
	if err := s.Admin.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	w.signal(syscall.SIGHUP) // a reload starts a pass at once
	n.expect(t, 10*time.Second, "READY=1")
	// The pass is mid-probe once the simulator holds its request.
	for deadline := time.Now().Add(10 * time.Second); ; {
		st, err := s.Admin.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Requests > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reload pass never reached the simulator")
		}
		select {
		case <-w.done:
			t.Fatalf("watch ended:\n%s", w.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	w.signal(syscall.SIGTERM)
	n.expect(t, 5*time.Second, "STOPPING=1")
	// Ends long before the 40s the pass would have taken.
	if code := w.wait(10 * time.Second); code != 0 {
		t.Errorf("watch exit %d after SIGTERM mid-pass, want 0\n%s", code, w.stderr.String())
	}
	// Mid-pass indeed: the reload's pass never reported.
	msgs := n.received()
	for i := len(msgs) - 2; i >= 0 && !strings.HasPrefix(msgs[i], "READY=1"); i-- {
		if strings.HasPrefix(msgs[i], "STATUS=") {
			t.Errorf("the pass ended before SIGTERM: %q", msgs)
		}
	}
}

// fastWatchBed is what the watch tests that read the journal share: a simulator and a
// journald in a new namespace, a policy that passes every second, a notify socket.
func fastWatchBed(t *testing.T) (context.Context, *harness.Sim, *journald, *run, *notifySocket) {
	t.Helper()
	ctx := testContext(t)
	ns := newNamespace(t)
	s, err := harness.StartSim(ctx, ns, bins.Imdssim, sim.FaultOK)
	if err != nil {
		t.Fatal(err)
	}
	j := startJournald(ctx, t, ns, journaldOptions{})
	r := newRun(t, ns)
	r.dropIn("50-fast.hcl", "settings {\n  interval = \"1s\"\n  probe_timeout = \"500ms\"\n}\n")
	return ctx, s, j, r, listenNotify(t)
}

func TestWatchJournalTransitions(t *testing.T) {
	ctx, s, j, r, n := fastWatchBed(t)
	const metrics = "/run/imdsmend.prom"
	// Only the rule the test breaks: nothing else on the machine may add transitions.
	w := startWatch(t, j.command(context.Background(), []string{"NOTIFY_SOCKET=" + n.path}, "sh", watchArgs(r, "--metrics-file", metrics, "--only", "imds_endpoint_disabled")...))
	n.expect(t, 20*time.Second, "READY=1")
	passes := 1

	// IMDS breaks (a 403 is final, no retries to outlast probe_timeout): the finding opens
	// once, however many passes see it.
	if err := s.Admin.SetConfig(ctx, sim.Config{Fault: sim.FaultDisabled}); err != nil {
		t.Fatal(err)
	}
	for unhealthy := 0; unhealthy < 3; passes++ {
		if strings.HasPrefix(status(n.expect(t, 20*time.Second, "STATUS=")), "NOT healthy") {
			unhealthy++
		}
	}
	if err := s.Admin.SetConfig(ctx, sim.Config{Fault: sim.FaultOK}); err != nil {
		t.Fatal(err)
	}
	for healthy := false; !healthy; passes++ {
		healthy = strings.HasPrefix(status(n.expect(t, 20*time.Second, "STATUS=")), "healthy")
	}
	r.dropIn("90-broken.hcl", "rule \"broken\" {\n  when = facts.imds.class ==\n}\n")
	w.signal(syscall.SIGHUP)
	n.expect(t, 10*time.Second, "RELOADING=1")
	n.expect(t, 10*time.Second, "READY=1")
	w.signal(syscall.SIGTERM)
	if code := w.wait(10 * time.Second); code != 0 {
		t.Errorf("watch exit %d, want 0\n%s", code, w.stderr.String())
	}

	count := map[string]int{}
	var rejected entry
	for _, e := range j.entries(ctx, true) {
		checkEntry(t, e)
		if e[report.FieldCommand] != "watch" {
			t.Errorf("watch entry with command %q: %v", e[report.FieldCommand], e)
		}
		count[report.MessageIDs[e["MESSAGE_ID"]]+" "+e[report.FieldRule]]++
		if e["MESSAGE_ID"] == report.MessagePolicyRejected {
			rejected = e
		}
	}
	for k, want := range map[string]int{"finding opened imds_endpoint_disabled": 1, "finding closed imds_endpoint_disabled": 1, "policy reload rejected ": 1} {
		if count[k] != want {
			t.Errorf("%d %q entries, want %d (all: %v)", count[k], k, want, count)
		}
	}
	// A verdict per transition (start, broken, mended), not one per pass.
	if got := count["run summary "]; got != 3 || passes < 5 {
		t.Errorf("%d summaries over %d passes, want 3; entries:\n%s", got, passes, messages(j.entries(ctx, true)))
	}
	if rejected["PRIORITY"] != "3" || !strings.Contains(rejected[report.FieldError], "90-broken.hcl:2") || rejected[report.FieldPolicy] != redact.String(r.policy) {
		t.Errorf("policy rejected entry: %v", rejected)
	}
	if strings.Contains(w.stderr.String(), "imdsmend: CRIT") {
		t.Errorf("entries also went to stderr:\n%s", w.stderr.String())
	}

	// The metrics file is the last pass's.
	res := j.exec(ctx, nil, "cat", metrics)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(res.Stdout))
	if err != nil {
		t.Fatalf("metrics file: %v\n%s", err, res.Stdout)
	}
	healthy := families[report.MetricHealthy]
	if healthy == nil || healthy.GetMetric()[0].GetGauge().GetValue() != 1 || healthy.GetMetric()[0].GetLabel()[0].GetValue() != "watch" {
		t.Errorf("imdsmend_healthy: %v", healthy)
	}
	if up := families[report.MetricIMDSUp]; up == nil || up.GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Errorf("imdsmend_imds_up: %v", up)
	}
}

// messages lists entries' kinds and messages, for failure output.
func messages(entries []entry) string {
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "%s [%s]: %s\n", report.MessageIDs[e["MESSAGE_ID"]], e[report.FieldTrigger], e["MESSAGE"])
	}
	return b.String()
}

func TestWatchSurvivesJournalLoss(t *testing.T) {
	ctx, s, j, r, n := fastWatchBed(t)
	w := startWatch(t, j.command(context.Background(), []string{"NOTIFY_SOCKET=" + n.path}, "sh", watchArgs(r, "--only", "imds_endpoint_disabled")...))
	n.expect(t, 20*time.Second, "READY=1")

	// journald goes away for good; its socket file stays, refusing connections.
	if err := syscall.Kill(j.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := s.Admin.SetConfig(ctx, sim.Config{Fault: sim.FaultDisabled}); err != nil {
		t.Fatal(err)
	}
	for {
		if strings.HasPrefix(status(n.expect(t, 20*time.Second, "STATUS=")), "NOT healthy") {
			break
		}
	}
	w.signal(syscall.SIGTERM)
	if code := w.wait(10 * time.Second); code != 0 {
		t.Errorf("watch exit %d, want 0\n%s", code, w.stderr.String())
	}
	for _, want := range []string{"journald did not take an entry", "finding opened: imds_endpoint_disabled"} {
		if !strings.Contains(w.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, w.stderr.String())
		}
	}
}
