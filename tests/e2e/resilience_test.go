package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/tests/harness"
)

// The resilience tests: imdsmend under conditions a busy or broken host brings — a state
// directory it cannot write, the xtables lock held by another program, several runs at
// once, and something that keeps undoing its fix.

// inMountNS runs setup, then each command line, in one private mount namespace inside ns
// (so mounts over the state directory or /run stay the test's), and returns each
// command's result. The script stops at a failed setup line.
func inMountNS(ctx context.Context, t *testing.T, ns *harness.Namespace, setup string, cmds ...[]string) []harness.Result {
	t.Helper()
	out := t.TempDir()
	script := setup
	for i, argv := range cmds {
		q := make([]string, len(argv))
		for j, a := range argv {
			q[j] = shellQuote(a)
		}
		script += fmt.Sprintf("\n%s >%s/%d.out 2>%s/%d.err && echo 0 >%s/%d.rc || echo $? >%s/%d.rc", strings.Join(q, " "), out, i, out, i, out, i, out, i)
	}
	if res, err := ns.Exec(ctx, nil, "unshare", "-m", "--propagation", "private", "sh", "-ec", script); err != nil || res.ExitCode != 0 {
		t.Fatalf("%v, exit %d\n%s%s", err, res.ExitCode, res.Stdout, res.Stderr)
	}
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	results := make([]harness.Result, len(cmds))
	for i := range cmds {
		code, err := strconv.Atoi(strings.TrimSpace(read(fmt.Sprintf("%d.rc", i))))
		if err != nil {
			t.Fatal(err)
		}
		results[i] = harness.Result{Stdout: read(fmt.Sprintf("%d.out", i)), Stderr: read(fmt.Sprintf("%d.err", i)), ExitCode: code}
	}
	return results
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestResilienceStateUnwritable: with /var/lib/imdsmend read-only or full, check still
// finds and reports the blocker, and apply makes no change it cannot record in the ledger:
// the fix is reported failed, naming why, and the rule stays.
func TestResilienceStateUnwritable(t *testing.T) {
	tests := []struct {
		name  string
		mount string // shell: makes STATE unwritable
		why   string
	}{
		{"read-only", "mount -t tmpfs -o ro tmpfs \"$STATE\"", "read-only file system"},
		{"full", "mount -t tmpfs -o size=4k tmpfs \"$STATE\"; dd if=/dev/zero of=\"$STATE/fill\" bs=4k 2>/dev/null || true", "no space left on device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, ns, r, before := rejectBed(t)
			setup := fmt.Sprintf("STATE=%s\nmkdir -p \"$STATE\"\n%s", shellQuote(r.stateDir), tt.mount)
			res := inMountNS(ctx, t, ns, setup,
				append([]string{bins.Imdsmend}, r.args("check", "--format", "json")...),
				append([]string{bins.Imdsmend}, r.args("apply", "--format", "json")...))
			check := decodeReport(t, "check", res[0])
			if res[0].ExitCode != report.ExitFindings || !slices.Contains(findingRules(check), "firewall_blocks_imds") {
				t.Errorf("check: exit %d, findings %v; want the blocker found\n%s", res[0].ExitCode, findingRules(check), res[0].Stderr)
			}
			apply := decodeReport(t, "apply", res[1])
			acts := deleteActions(apply)
			if res[1].ExitCode != report.ExitFindings || len(acts) != 1 || acts[0].Status != "failed" || !strings.Contains(acts[0].Error, tt.why) {
				t.Errorf("apply: exit %d, actions %+v; want the fix failed for %q\n%s", res[1].ExitCode, apply.Actions, tt.why, res[1].Stderr)
			}
			if !slices.Contains(findingRules(apply), "firewall_blocks_imds") {
				t.Errorf("apply: findings %v; want the blocker still reported", findingRules(apply))
			}
			if got := firewallState(ctx, t, ns); got != before {
				t.Errorf("a change was made without a ledger (-before +after):\n%s", cmp.Diff(before, got))
			}
		})
	}
}

// TestResilienceXtablesLockHeld: another program holds /run/xtables.lock (flock, in a
// private /run) while legacy iptables rules block IMDS. check and apply wait the bounded
// time, report the firewall rules undecided naming the lock and how long it was held, and
// change nothing; neither hangs (the test's context would end it).
func TestResilienceXtablesLockHeld(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	serveAEMM(ctx, t, ns)
	if err := harness.LegacyRejectIMDS.Make(ctx, ns); err != nil {
		t.Fatal(err)
	}
	before := firewallState(ctx, t, ns)
	r := newRun(t, ns)
	// The holder is the script's shell, until it ends.
	setup := "mount -t tmpfs tmpfs /run\nexec 9>/run/xtables.lock\nflock 9"
	res := inMountNS(ctx, t, ns, setup,
		append([]string{bins.Imdsmend}, r.args("check", "--format", "json")...),
		append([]string{bins.Imdsmend}, r.args("apply", "--format", "json")...))
	for i, command := range []string{"check", "apply"} {
		rep := decodeReport(t, command, res[i])
		var reason string
		for _, u := range rep.Unknown {
			if u.Rule == "firewall_blocks_imds" {
				reason = u.Reason
			}
		}
		if res[i].ExitCode != report.ExitFindings || !strings.Contains(reason, "/run/xtables.lock stayed locked for 1s") || len(rep.Actions) != 0 {
			t.Errorf("%s: exit %d, firewall_blocks_imds undecided for %q, actions %+v; want exit 2, the lock named, nothing done\n%s",
				command, res[i].ExitCode, reason, rep.Actions, res[i].Stderr)
		}
		if !slices.Contains(findingRules(rep), "imds_unreachable") {
			t.Errorf("%s: findings %v; want IMDS reported unreachable", command, findingRules(rep))
		}
	}
	if got := firewallState(ctx, t, ns); got != before {
		t.Errorf("rules changed under a held lock:\n%s", cmp.Diff(before, got))
	}
}

// TestResilienceConcurrentRuns: the boot unit's, the timer's and a manual apply start at
// once against one blocker. One deletes the rule; the others wait for the run lock and
// find nothing left to do; all end healthy and the ledger holds one change. A run that
// cannot get the lock within its --timeout says who holds it.
func TestResilienceConcurrentRuns(t *testing.T) {
	ctx, ns, r, _ := rejectBed(t)
	argvs := [][]string{
		r.args("apply", "--timeout", "20s", "--format", "json"), // imdsmend-boot.service
		r.args("apply", "--format", "json"),                     // imdsmend.service, from the timer
		r.args("apply", "--format", "json"),                     // by hand
	}
	results := make([]harness.Result, len(argvs))
	var wg sync.WaitGroup
	for i, argv := range argvs {
		wg.Go(func() {
			res, err := ns.Exec(ctx, nil, bins.Imdsmend, argv...)
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		})
	}
	wg.Wait()
	applied := 0
	for i, res := range results {
		rep := decodeReport(t, "apply", res)
		for _, a := range deleteActions(rep) {
			if a.Status == "applied" {
				applied++
			} else {
				t.Errorf("run %d: action %+v", i, a)
			}
		}
		if res.ExitCode != report.ExitHealthy {
			t.Errorf("run %d: exit %d, findings %v\n%s", i, res.ExitCode, findingRules(rep), res.Stderr)
		}
	}
	if applied != 1 || len(pendingIDs(ctx, t, r)) != 1 {
		t.Errorf("%d runs deleted the rule, undo --list %v; want one change", applied, pendingIDs(ctx, t, r))
	}

	// A fourth run while another process holds the run lock (a private /run): it gives up
	// at its --timeout and names the lock.
	setup := "mount -t tmpfs tmpfs /run\nexec 9>/run/imdsmend.lock\nflock 9"
	res := inMountNS(ctx, t, ns, setup, append([]string{bins.Imdsmend}, r.args("apply", "--timeout", "1s")...))
	if res[0].ExitCode != report.ExitError || !strings.Contains(res[0].Stderr, "another imdsmend run holds /run/imdsmend.lock") {
		t.Errorf("apply with the lock held: exit %d\n%s%s; want exit 1 naming the lock", res[0].ExitCode, res[0].Stdout, res[0].Stderr)
	}
}

// TestResilienceFightLoop: a rule re-added after every fix, as a configuration tool that
// rewrites /etc/iptables/rules.v4 and restores it would, is deleted four times (from the
// file too); the fifth time the breaker holds the fix with a critical remediation_loop
// finding naming the rules file, and leaves the rule. `imdsmend reset` re-arms it.
func TestResilienceFightLoop(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	serveAEMM(ctx, t, ns)
	if err := harness.RejectIMDS.Make(ctx, ns); err != nil {
		t.Fatal(err)
	}
	saved, err := ns.Exec(ctx, nil, "iptables-nft-save")
	if err != nil || saved.ExitCode != 0 {
		t.Fatalf("iptables-nft-save: %v %+v", err, saved)
	}
	tr := newProxyTree(t, ns, map[string]string{"etc/iptables/rules.v4": saved.Stdout})
	readd := func() {
		t.Helper()
		if err := os.WriteFile(tr.path("etc/iptables/rules.v4"), []byte(saved.Stdout), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := harness.RejectIMDS.Gone(ctx, ns); err != nil {
			return // still there
		}
		if err := harness.RejectIMDS.Make(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		readd()
		rep, res := tr.report(ctx, "apply")
		if acts := deleteActions(rep); res.ExitCode != report.ExitHealthy || len(acts) != 1 || acts[0].Status != "applied" {
			t.Fatalf("apply %d: exit %d, actions %+v\n%s", i+1, res.ExitCode, rep.Actions, res.Stderr)
		}
	}
	readd()
	rep, res := tr.report(ctx, "apply")
	acts := deleteActions(rep)
	if res.ExitCode != report.ExitFindings || len(acts) != 1 || acts[0].Status != "skipped" || !strings.Contains(acts[0].Error, "fight-loop breaker") {
		t.Fatalf("apply 5: exit %d, actions %+v; want the fix held\n%s", res.ExitCode, rep.Actions, res.Stderr)
	}
	var loop *report.Finding
	for i := range rep.Findings {
		if rep.Findings[i].Rule == "remediation_loop" {
			loop = &rep.Findings[i]
		}
	}
	if loop == nil || loop.Severity != "critical" {
		t.Fatalf("apply 5: findings %+v; want a critical remediation_loop", rep.Findings)
	}
	var ev struct {
		Rule      string `json:"rule"`
		Kind      string `json:"kind"`
		ReaddedBy string `json:"readded_by"`
	}
	if err := json.Unmarshal(loop.Evidence, &ev); err != nil || ev.Rule != "firewall_blocks_imds" || ev.Kind != "firewall_delete" ||
		!strings.Contains(ev.ReaddedBy, "/etc/iptables/rules.v4 (line ") {
		t.Errorf("remediation_loop evidence %s (%v); want the rule, the fix and rules.v4", loop.Evidence, err)
	}
	if err := harness.RejectIMDS.Gone(ctx, ns); err == nil {
		t.Errorf("the held fix was applied")
	}
	if res := tr.exec(ctx, nil, "reset"); res.ExitCode != 0 || !strings.Contains(res.Stdout, "firewall_blocks_imds: firewall_delete") {
		t.Fatalf("reset: exit %d\n%s%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	if rep, res := tr.report(ctx, "apply"); res.ExitCode != report.ExitHealthy || len(deleteActions(rep)) != 1 || deleteActions(rep)[0].Status != "applied" {
		t.Errorf("apply after reset: exit %d, actions %+v\n%s", res.ExitCode, rep.Actions, res.Stderr)
	}
}
