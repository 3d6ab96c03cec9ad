package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/tests/harness"
)

// killAfter puts an iptables-nft first on PATH that runs the real one and, once a command
// with flag (-D, -I) has succeeded, kills its caller with SIGKILL: imdsmend dies between the
// change and its result record, as kill -9 or a power cut would leave it. It returns the
// PATH.
func killAfter(t *testing.T, flag string) string {
	return afterIptables(t, flag, "kill -9 $PPID")
}

// afterIptables puts an iptables-nft first on PATH that runs the real one and, once a
// command with flag has succeeded, runs the shell command then. It returns the PATH.
func afterIptables(t *testing.T, flag, then string) string {
	t.Helper()
	real, err := exec.LookPath("iptables-nft")
	if err != nil {
		t.Skip("iptables-nft is not installed")
	}
	dir := t.TempDir()
	script := "#!/bin/sh\n" + real + " \"$@\"\nrc=$?\n" +
		"case \" $* \" in *\" " + flag + " \"*) [ $rc = 0 ] && " + then + " ;; esac\nexit $rc\n"
	if err := os.WriteFile(filepath.Join(dir, "iptables-nft"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir + ":" + os.Getenv("PATH")
}

// rejectBed is a namespace serving IMDS behind an iptables REJECT of it, and the rules as
// they were.
func rejectBed(t *testing.T) (context.Context, *harness.Namespace, *run, string) {
	t.Helper()
	ctx := testContext(t)
	ns := newNamespace(t)
	serveAEMM(ctx, t, ns)
	r := newRun(t, ns)
	if err := harness.RejectIMDS.Make(ctx, ns); err != nil {
		t.Fatal(err)
	}
	return ctx, ns, r, firewallState(ctx, t, ns)
}

// TestLedgerKilledMidApply: apply killed with SIGKILL right after deleting a blocking rule
// leaves the rule deleted and no result in the ledger. The next apply looks at the
// firewall, records the change as applied (reported with the interrupted run), and undo
// puts the rule back, once.
func TestLedgerKilledMidApply(t *testing.T) {
	ctx, ns, r, before := rejectBed(t)

	res, err := ns.Exec(ctx, []string{"PATH=" + killAfter(t, "-D")}, bins.Imdsmend, r.args("apply", "--format", "json")...)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != -1 {
		t.Fatalf("apply was not killed: exit %d\n%s%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	if err := harness.RejectIMDS.Gone(ctx, ns); err != nil {
		t.Fatalf("the rule was not deleted before the kill: %v", err)
	}
	if got := pendingIDs(ctx, t, r); len(got) != 0 {
		t.Fatalf("undo --list after the kill = %v; the result was never written", got)
	}

	rep, res := r.report(ctx, "apply")
	acts := deleteActions(rep)
	if res.ExitCode != report.ExitHealthy || len(acts) != 1 || acts[0].Status != "applied" || acts[0].InterruptedRun == "" {
		t.Fatalf("apply after the kill: exit %d, actions %+v; want the interrupted change found applied\n%s", res.ExitCode, acts, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "interrupted run "+acts[0].InterruptedRun) {
		t.Errorf("the audit trail (journal, or stderr without it) does not name the interrupted run:\n%s", res.Stderr)
	}
	if got := pendingIDs(ctx, t, r); !slices.Equal(got, []string{acts[0].ID}) {
		t.Errorf("undo --list = %v, want [%s]", got, acts[0].ID)
	}

	rep, res = r.report(ctx, "undo", "--last")
	if res.ExitCode != 0 || len(rep.Actions) != 1 || rep.Actions[0].Status != "reverted" {
		t.Errorf("undo: exit %d, actions %+v\n%s", res.ExitCode, rep.Actions, res.Stderr)
	}
	if got := firewallState(ctx, t, ns); got != before {
		t.Errorf("undo did not restore the rules (-before +after):\n%s", cmp.Diff(before, got))
	}
}

// TestLedgerRetriedUndo: an undo killed after putting the rule back, then retried, does not
// put it back twice.
func TestLedgerRetriedUndo(t *testing.T) {
	ctx, ns, r, before := rejectBed(t)
	if _, res := r.report(ctx, "apply"); res.ExitCode != report.ExitHealthy {
		t.Fatalf("apply: exit %d\n%s", res.ExitCode, res.Stderr)
	}
	// Killed right after the insert that reverts the deletion.
	res, err := ns.Exec(ctx, []string{"PATH=" + killAfter(t, "-I")}, bins.Imdsmend, r.args("undo", "--last", "--format", "json")...)
	if err != nil || res.ExitCode != -1 {
		t.Fatalf("undo was not killed: %v, exit %d\n%s%s", err, res.ExitCode, res.Stdout, res.Stderr)
	}
	rep, res := r.report(ctx, "undo", "--last")
	if res.ExitCode != 0 {
		t.Errorf("retried undo: exit %d, actions %+v\n%s", res.ExitCode, rep.Actions, res.Stderr)
	}
	if got := firewallState(ctx, t, ns); got != before {
		t.Errorf("after the retried undo (-before +after):\n%s", cmp.Diff(before, got))
	}
	if got := pendingIDs(ctx, t, r); len(got) != 0 {
		t.Errorf("undo --list = %v, want nothing", got)
	}
}

// TestLedgerFullDisk: the disk fills up between deleting a rule and recording the result
// (/dev/full bound over the ledger, in a mount namespace of the run's own). Apply says the
// result could not be recorded; the next apply records the change applied, and undo puts
// the rule back.
func TestLedgerFullDisk(t *testing.T) {
	ctx, ns, r, before := rejectBed(t)
	ledger := filepath.Join(r.stateDir, "ledger.jsonl")
	path := afterIptables(t, "-D", "mount --bind /dev/full "+ledger)
	out := t.TempDir()
	// One mount namespace for the full disk, its end, and the next run.
	script := fmt.Sprintf("PATH=%s %s >%s/full.json 2>%s/full.err; umount %s; %s >%s/next.json 2>%s/next.err; exit 0",
		path, strings.Join(append([]string{bins.Imdsmend}, r.args("apply", "--format", "json")...), " "), out, out, ledger,
		strings.Join(append([]string{bins.Imdsmend}, r.args("apply", "--format", "json")...), " "), out, out)
	if res, err := ns.Exec(ctx, nil, "unshare", "-m", "--propagation", "private", "sh", "-c", script); err != nil || res.ExitCode != 0 {
		t.Fatalf("%v, exit %d\n%s%s", err, res.ExitCode, res.Stdout, res.Stderr)
	}
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	full := decodeReport(t, "apply", harness.Result{Stdout: read("full.json")})
	if acts := deleteActions(full); len(acts) != 1 || acts[0].Status != "applied" || !strings.Contains(acts[0].Error, "no space left on device") ||
		!strings.Contains(acts[0].Error, "the next run checks the system and records the outcome") {
		t.Fatalf("apply on a full disk: actions %+v\n%s", full.Actions, read("full.err"))
	}
	next := decodeReport(t, "apply", harness.Result{Stdout: read("next.json")})
	if acts := deleteActions(next); len(acts) != 1 || acts[0].Status != "applied" || acts[0].InterruptedRun != full.RunID {
		t.Fatalf("the next apply: actions %+v; want the change found applied, naming run %s\n%s", next.Actions, full.RunID, read("next.err"))
	}
	rep, res := r.report(ctx, "undo", "--last")
	if res.ExitCode != 0 || len(rep.Actions) != 1 || rep.Actions[0].Status != "reverted" {
		t.Errorf("undo: exit %d, actions %+v\n%s", res.ExitCode, rep.Actions, res.Stderr)
	}
	if got := firewallState(ctx, t, ns); got != before {
		t.Errorf("undo did not restore the rules (-before +after):\n%s", cmp.Diff(before, got))
	}
}
