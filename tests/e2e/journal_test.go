package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/tests/harness"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
)

// journald is a systemd-journald private to one test. It runs in the test's network
// namespace and in a mount namespace of its own, where a tmpfs covers /run (and
// /var/log/journal), so the host's journal never sees the test and the test reads only
// its own entries. Commands run beside it with nsenter into its namespaces.
type journald struct {
	t   testing.TB
	cmd *exec.Cmd
	pid int
}

// journaldOptions shape the bed.
type journaldOptions struct {
	// runSize is the size of the tmpfs on /run (default 32m).
	runSize string
	// catalog is a catalog database (journalctl --update-catalog output) to show with -x.
	catalog string
}

func journaldBinary(t testing.TB) string {
	for _, p := range []string{"/lib/systemd/systemd-journald", "/usr/lib/systemd/systemd-journald"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("systemd-journald is not installed (apt-get install systemd)")
	return ""
}

// startJournald starts the bed and returns once journald said READY=1.
func startJournald(ctx context.Context, t testing.TB, ns *harness.Namespace, o journaldOptions) *journald {
	t.Helper()
	bin := journaldBinary(t)
	if o.runSize == "" {
		o.runSize = "32m"
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "journald.conf")
	// Only what the test sends: no kernel log, nothing forwarded anywhere.
	if err := os.WriteFile(conf, []byte("[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToSyslog=no\nForwardToKMsg=no\nForwardToConsole=no\nForwardToWall=no\nRateLimitBurst=0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `set -e
mount -t tmpfs -o size="$RUN_SIZE",mode=0755 tmpfs /run
mkdir -p /run/systemd/journal /run/log/journal
if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
if [ -f /etc/systemd/journald.conf ]; then mount --bind "$CONF" /etc/systemd/journald.conf; fi
if [ -n "$CATALOG" ] && [ -d /var/lib/systemd/catalog ]; then
  mount -t tmpfs tmpfs /var/lib/systemd/catalog
  cp "$CATALOG" /var/lib/systemd/catalog/database
fi
exec "$JOURNALD"`
	notify := listenNotify(t)
	// nsenter, not `ip netns exec`: that mounts a fresh /sys without /sys/fs/cgroup, and
	// journald will not start without its cgroup root.
	cmd := exec.Command("nsenter", "--net=/run/netns/"+ns.Name, "unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = harness.Environ("RUN_SIZE="+o.runSize, "CONF="+conf, "CATALOG="+o.catalog, "JOURNALD="+bin, "NOTIFY_SOCKET="+notify.path)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	j := &journald{t: t, cmd: cmd, pid: cmd.Process.Pid}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-j.pid, syscall.SIGCONT) // in case a test stopped it
		_ = syscall.Kill(-j.pid, syscall.SIGKILL)
		<-exited
	})
	if _, err := notify.waitFor(ctx, "READY=1"); err != nil {
		t.Fatalf("systemd-journald did not get ready: %v\n%s", err, out.String())
	}
	return j
}

// hermetic wraps a command so it runs with a private, empty /run: no journald there, and
// none of the host's sees what the test does.
func hermetic(name string, args ...string) (string, []string) {
	return "unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", `mount -t tmpfs tmpfs /run && exec "$@"`, "sh", name}, args...)
}

// command runs name inside the bed's mount and network namespaces.
func (j *journald) command(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	full := append([]string{"--target", strconv.Itoa(j.pid), "--mount", "--net", "--", name}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", full...)
	cmd.Env = harness.Environ(env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// exec runs a command beside journald and waits for it.
func (j *journald) exec(ctx context.Context, env []string, name string, args ...string) harness.Result {
	j.t.Helper()
	res, err := harness.Run(j.command(ctx, env, name, args...))
	if err != nil {
		j.t.Fatalf("run %s beside journald: %v", name, err)
	}
	return res
}

// imdsmend runs one imdsmend command with r's policy and state beside journald and decodes
// its JSON report.
func (j *journald) imdsmend(ctx context.Context, r *run, command string, args ...string) (*report.Report, harness.Result) {
	j.t.Helper()
	res := j.exec(ctx, nil, bins.Imdsmend, r.args(command, append([]string{"--format", "json"}, args...)...)...)
	return decodeReport(j.t, command, res), res
}

// entry is one journal entry's text fields.
type entry map[string]string

// entries syncs the journal and returns every entry, optionally only imdsmend's.
func (j *journald) entries(ctx context.Context, onlyImdsmend bool) []entry {
	j.t.Helper()
	if res := j.exec(ctx, nil, "journalctl", "--sync"); res.ExitCode != 0 {
		j.t.Fatalf("journalctl --sync: %s", res.Stderr)
	}
	args := []string{"-o", "json", "--no-pager"}
	if onlyImdsmend {
		args = append(args, "-t", report.SyslogIdentifier)
	}
	res := j.exec(ctx, nil, "journalctl", args...)
	if res.ExitCode != 0 && res.Stdout != "" {
		j.t.Fatalf("journalctl: exit %d: %s", res.ExitCode, res.Stderr)
	}
	var out []entry
	sc := bufio.NewScanner(strings.NewReader(res.Stdout))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			j.t.Fatalf("journalctl -o json line: %v: %s", err, sc.Text())
		}
		e := entry{}
		for k, v := range raw {
			if s, ok := v.(string); ok {
				e[k] = s
			}
		}
		out = append(out, e)
	}
	return out
}

// export is the whole journal in journald's export format: every field of every entry,
// byte for byte.
func (j *journald) export(ctx context.Context) []byte {
	j.t.Helper()
	j.exec(ctx, nil, "journalctl", "--sync")
	res := j.exec(ctx, nil, "journalctl", "-o", "export", "--no-pager")
	return []byte(res.Stdout)
}

// recordingIMDS serves the simulator on 169.254.169.254:80 inside ns from this process,
// and records every token it hands out, so a test knows exactly which secrets imdsmend
// held.
type recordingIMDS struct {
	sim    *sim.Server
	mu     sync.Mutex
	tokens []string
}

func serveRecordingIMDS(t testing.TB, ns *harness.Namespace) *recordingIMDS {
	t.Helper()
	// The socket stays in the namespace when the thread returns to the host's.
	var l net.Listener
	err := ns.Do(func() (err error) {
		l, err = net.Listen("tcp", harness.IMDSAddr+":80")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &recordingIMDS{sim: sim.New(sim.Config{Fault: sim.FaultOK})}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return r
}

func (r *recordingIMDS) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPut || req.URL.Path != sim.TokenPath {
		r.sim.ServeHTTP(w, req)
		return
	}
	rec := &bodyRecorder{ResponseWriter: w}
	r.sim.ServeHTTP(rec, req)
	if tok := strings.TrimSpace(rec.body.String()); tok != "" {
		r.mu.Lock()
		r.tokens = append(r.tokens, tok)
		r.mu.Unlock()
	}
}

func (r *recordingIMDS) issued() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.tokens)
}

type bodyRecorder struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (b *bodyRecorder) Write(p []byte) (int, error) {
	b.body.Write(p)
	return b.ResponseWriter.Write(p)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// checkEntry asserts what every imdsmend entry must have.
func checkEntry(t *testing.T, e entry) {
	t.Helper()
	if _, ok := report.MessageIDs[e["MESSAGE_ID"]]; !ok {
		t.Errorf("entry %q has MESSAGE_ID %q, not one of report.MessageIDs", e["MESSAGE"], e["MESSAGE_ID"])
	}
	if e["_TRANSPORT"] != "journal" {
		t.Errorf("entry %q came by %q, want the native protocol (journal)", e["MESSAGE"], e["_TRANSPORT"])
	}
	if p, err := strconv.Atoi(e["PRIORITY"]); err != nil || p < 0 || p > 7 {
		t.Errorf("entry %q has PRIORITY %q", e["MESSAGE"], e["PRIORITY"])
	}
}

// byRun returns the entries of one run.
func byRun(entries []entry, runID string) []entry {
	var out []entry
	for _, e := range entries {
		if e[report.FieldRunID] == runID {
			out = append(out, e)
		}
	}
	return out
}

func TestJournalAuditTrail(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	imds := serveRecordingIMDS(t, ns)
	j := startJournald(ctx, t, ns, journaldOptions{})
	r := newRun(t, ns)

	healthy, res := j.imdsmend(ctx, r, "check")
	if res.ExitCode != report.ExitHealthy || healthy.IMDS == nil || healthy.IMDS.Class != "ok" {
		t.Fatalf("healthy check: exit %d, imds %+v\n%s", res.ExitCode, healthy.IMDS, res.Stderr)
	}
	if len(imds.issued()) == 0 {
		t.Fatal("imdsmend got no token from the simulator; the secret test below would prove nothing")
	}
	if err := harness.RejectIMDS.Make(ctx, ns); err != nil {
		t.Fatal(err)
	}
	sick, res := j.imdsmend(ctx, r, "check")
	if res.ExitCode != report.ExitFindings {
		t.Fatalf("check with IMDS blocked: exit %d, want %d\n%s", res.ExitCode, report.ExitFindings, res.Stderr)
	}
	// With journald there, nothing is logged twice as text on stderr.
	if strings.Contains(res.Stderr, "imdsmend: CRIT") || strings.Contains(res.Stderr, "imdsmend: WARNING") {
		t.Errorf("entries went to stderr although journald was there:\n%s", res.Stderr)
	}
	// apply fixes what the policy allows; every action it reports must be in the journal.
	fixed, res := j.imdsmend(ctx, r, "apply")
	if res.ExitCode == report.ExitError {
		t.Fatalf("apply: exit %d\n%s", res.ExitCode, res.Stderr)
	}

	all := j.entries(ctx, true)
	for _, e := range all {
		checkEntry(t, e)
	}

	// The healthy run: one verdict, nothing else.
	got := byRun(all, healthy.RunID)
	if len(got) != 1 || got[0]["MESSAGE_ID"] != report.MessageRunSummary {
		t.Fatalf("healthy run: want one summary entry, got %v", got)
	}
	for k, want := range map[string]string{"PRIORITY": "6", report.FieldHealthy: "true", report.FieldCommand: "check", report.FieldIMDSClass: "ok", "SYSLOG_IDENTIFIER": "imdsmend"} {
		if got[0][k] != want {
			t.Errorf("healthy summary %s = %q, want %q", k, got[0][k], want)
		}
	}

	// The blocked check: an entry per finding, then the verdict.
	got = byRun(all, sick.RunID)
	if want := len(sick.Findings) + 1; len(got) != want {
		t.Errorf("blocked check: %d entries, want %d (findings %v)", len(got), want, findingRules(sick))
	}
	findings := map[string]entry{}
	for _, e := range got {
		switch e["MESSAGE_ID"] {
		case report.MessageFinding:
			findings[e[report.FieldRule]] = e
		case report.MessageRunSummary:
			if e["PRIORITY"] != "4" || e[report.FieldHealthy] != "false" || e[report.FieldFindings] != strconv.Itoa(len(sick.Findings)) {
				t.Errorf("blocked summary: %v", e)
			}
		default:
			t.Errorf("check wrote an entry that is neither finding nor summary: %v", e)
		}
	}
	unreachable, ok := findings["imds_unreachable"]
	if !ok {
		t.Fatalf("no entry for finding imds_unreachable among %v", got)
	}
	for k, want := range map[string]string{"PRIORITY": "2", report.FieldSeverity: "critical", report.FieldCommand: "check"} {
		if unreachable[k] != want {
			t.Errorf("finding entry %s = %q, want %q", k, unreachable[k], want)
		}
	}
	for _, f := range sick.Findings {
		if _, ok := findings[f.Rule]; !ok {
			t.Errorf("finding %s has no journal entry", f.Rule)
		}
	}

	// apply: an entry per action (and per finding left), then the verdict.
	got = byRun(all, fixed.RunID)
	if want := len(fixed.Findings) + len(fixed.Actions) + 1; len(got) != want {
		t.Errorf("apply: %d entries, want %d (findings %v, %d actions)", len(got), want, findingRules(fixed), len(fixed.Actions))
	}
	actions := map[string]entry{}
	for _, e := range got {
		if e[report.FieldActionID] != "" {
			actions[e[report.FieldActionID]] = e
		}
	}
	statusIDs := map[string]string{"planned": report.MessageActionPlanned, "applied": report.MessageActionApplied,
		"unchanged": report.MessageActionUnchanged, "skipped": report.MessageActionSkipped,
		"failed": report.MessageActionFailed, "reverted": report.MessageActionReverted}
	for _, a := range fixed.Actions {
		e, ok := actions[a.ID]
		if !ok {
			t.Errorf("action %s (%s %s) has no journal entry", a.ID, a.Kind, a.Status)
			continue
		}
		for k, want := range map[string]string{"MESSAGE_ID": statusIDs[string(a.Status)], report.FieldAction: a.Kind,
			report.FieldStatus: string(a.Status), report.FieldRule: a.Rule, report.FieldTarget: a.Target, report.FieldCommand: "apply"} {
			if e[k] != want {
				t.Errorf("action %s entry %s = %q, want %q", a.ID, k, e[k], want)
			}
		}
		if a.Status == "applied" && e["PRIORITY"] != "5" {
			t.Errorf("applied action PRIORITY %q, want 5", e["PRIORITY"])
		}
	}

	// journalctl filters on the fields, as docs/operating.md shows.
	res = j.exec(ctx, nil, "journalctl", "-o", "json", "--no-pager", report.FieldRule+"=imds_unreachable")
	if n := strings.Count(strings.TrimSpace(res.Stdout), "\n") + 1; res.Stdout == "" || n != 1 {
		t.Errorf("journalctl IMDSMEND_RULE=imds_unreachable: %d entries, want 1:\n%s", n, res.Stdout)
	}

	// No token imdsmend held is anywhere in the journal, in any field.
	journal := j.export(ctx)
	if !bytes.Contains(journal, []byte(healthy.RunID)) {
		t.Fatal("the export holds no imdsmend entry; the grep below would prove nothing")
	}
	for _, tok := range imds.issued() {
		if bytes.Contains(journal, []byte(tok)) {
			t.Errorf("the journal contains the IMDS token %s…", tok[:8])
		}
	}
}

func TestJournalCatalogExplainsEntries(t *testing.T) {
	ctx := testContext(t)
	root := t.TempDir()
	catalogDir := filepath.Join(root, "usr/lib/systemd/catalog")
	if err := os.MkdirAll(catalogDir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(moduleRoot(t), "packaging/imdsmend.catalog"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(catalogDir, "imdsmend.catalog"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, "journalctl", "--root", root, "--update-catalog").CombinedOutput(); err != nil {
		t.Fatalf("journalctl --update-catalog: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, "journalctl", "--root", root, "--list-catalog").CombinedOutput()
	if err != nil {
		t.Fatalf("journalctl --list-catalog: %v\n%s", err, out)
	}
	for id, name := range report.MessageIDs {
		if !bytes.Contains(out, []byte(id+" imdsmend: ")) {
			t.Errorf("catalog database lacks %s (%s):\n%s", id, name, out)
		}
	}

	// journalctl -x shows the explanation with the entry's fields filled in.
	ns := newNamespace(t)
	if _, err := os.Stat("/var/lib/systemd/catalog"); err != nil {
		t.Skip("no /var/lib/systemd/catalog to mount the test catalog on")
	}
	j := startJournald(ctx, t, ns, journaldOptions{catalog: filepath.Join(root, "var/lib/systemd/catalog/database")})
	r := newRun(t, ns)
	if _, res := j.imdsmend(ctx, r, "check"); res.ExitCode != report.ExitFindings {
		t.Fatalf("check with no IMDS: exit %d\n%s", res.ExitCode, res.Stderr)
	}
	j.exec(ctx, nil, "journalctl", "--sync")
	res := j.exec(ctx, nil, "journalctl", "-x", "--no-pager", "-t", "imdsmend", "MESSAGE_ID="+report.MessageFinding)
	for _, want := range []string{"Subject: IMDS finding imds_unreachable (critical) is open", "What to do:"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("journalctl -x lacks %q:\n%s%s", want, res.Stdout, res.Stderr)
		}
	}
}

// moduleRoot is the repository's top directory (tests run in tests/e2e).
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestJournalAbsentWritesText(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	r := newRun(t, ns)
	name, args := hermetic(bins.Imdsmend, "check", "--policy", r.policy, "--state-dir", r.stateDir)
	res, err := ns.Exec(ctx, nil, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != report.ExitFindings {
		t.Fatalf("exit %d\n%s", res.ExitCode, res.Stderr)
	}
	for _, want := range []string{"imdsmend: CRIT finding imds_unreachable (critical)", `rule="imds_unreachable"`, "imdsmend: WARNING check: NOT healthy"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.Stderr)
		}
	}
	if !strings.Contains(res.Stdout, "imds_unreachable") {
		t.Errorf("the report itself is missing:\n%s", res.Stdout)
	}
}

// fillJournalSocket queues datagrams on journald's socket (journald stopped) until the
// queue is full, so the next sender blocks as behind a stalled journald.
func fillJournalSocket(t *testing.T, j *journald) {
	t.Helper()
	path := fmt.Sprintf("/proc/%d/root/run/systemd/journal/socket", j.pid)
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := 0; ; i++ {
		_ = conn.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := conn.Write([]byte("MESSAGE=filler\n")); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return
			}
			t.Fatalf("fill journald's queue: %v", err)
		}
		if i > 1<<16 {
			t.Fatal("journald's queue never filled")
		}
	}
}

func TestJournalStalledDoesNotHang(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	j := startJournald(ctx, t, ns, journaldOptions{})
	r := newRun(t, ns)
	if err := syscall.Kill(j.pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	fillJournalSocket(t, j)
	rep, res := j.imdsmend(ctx, r, "check")
	if res.ExitCode != report.ExitFindings || len(rep.Findings) == 0 {
		t.Fatalf("check beside a stalled journald: exit %d, findings %v\n%s", res.ExitCode, findingRules(rep), res.Stderr)
	}
	for _, want := range []string{"journald did not take the entry within", "imdsmend: CRIT finding imds_unreachable"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.Stderr)
		}
	}
}

func TestJournalFullRun(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	j := startJournald(ctx, t, ns, journaldOptions{runSize: "2m"})
	r := newRun(t, ns)
	// Fill /run to the last block; journald and everything else writing there gets ENOSPC.
	res := j.exec(ctx, nil, "sh", "-c", "dd if=/dev/zero of=/run/fill bs=64k 2>&1; df /run")
	if !strings.Contains(res.Stdout, "No space left") {
		t.Fatalf("could not fill /run:\n%s", res.Stdout)
	}
	metrics := "/run/imdsmend.prom"
	rep, res := j.imdsmend(ctx, r, "check", "--metrics-file", metrics)
	if res.ExitCode != report.ExitFindings || len(rep.Findings) == 0 {
		t.Fatalf("check with /run full: exit %d, findings %v\n%s", res.ExitCode, findingRules(rep), res.Stderr)
	}
	if !strings.Contains(res.Stderr, "write metrics file (--metrics-file)") {
		t.Errorf("the failed metrics write is not reported:\n%s", res.Stderr)
	}
	// Whatever journald could keep is still valid; reading it must work.
	for _, e := range j.entries(ctx, true) {
		checkEntry(t, e)
	}
}
