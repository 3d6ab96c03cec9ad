package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/tests/harness"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
)

// fastDrop keeps runs short where a DROP makes the probe wait for its timeout.
const fastDrop = "settings {\n  probe_timeout = \"500ms\"\n}\n"

// TestFirewallBlockers drives each blocker through the whole life of a fix: found by
// check, planned, applied (IMDS healthy again), a second apply that changes nothing, and
// undo --last, which must bring back exactly the rules there were.
func TestFirewallBlockers(t *testing.T) {
	tests := []struct {
		maker   harness.Maker
		serve   func(context.Context, testing.TB, *harness.Namespace)
		dropIns map[string]string
		// target of the firewall_delete action, or its prefix and suffix around a
		// handle for nft.
		target, targetEnd string
	}{
		{maker: harness.RejectIMDS, target: "nft/ipv4/filter/OUTPUT: -d 169.254.169.254/32 -p tcp -j REJECT --reject-with icmp-port-unreachable"},
		{maker: harness.ChainDropIMDS, dropIns: map[string]string{"50-fast.hcl": fastDrop}, target: "nft/ipv4/filter/IMDSBLOCK: -j DROP"},
		{maker: harness.CommentIMDS, target: `nft/ipv4/filter/OUTPUT: -d 169.254.169.254/32 -p tcp -m comment --comment "don\'t" -j REJECT --reject-with icmp-port-unreachable`},
		{maker: harness.ResetIMDS, target: "nft/ipv4/filter/OUTPUT: -d 169.254.169.254/32 -p tcp -j REJECT --reject-with tcp-reset"},
		{maker: harness.DNATIMDS, target: "nft/ipv4/nat/OUTPUT: -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:9"},
		{maker: harness.IPv6RejectIMDS, serve: serveSim(sim.FaultOK), dropIns: map[string]string{"50-ipv6.hcl": "settings {\n  ipv6 = true\n}\n"},
			target: "nft/ipv6/filter/OUTPUT: -d fd00:ec2::254/128 -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp6-port-unreachable"},
		{maker: harness.LegacyRejectIMDS, target: "legacy/ipv4/filter/OUTPUT: -d 169.254.169.254/32 -p tcp -j REJECT --reject-with icmp-port-unreachable"},
		{maker: harness.NftRejectIMDS, target: "nftables/inet imdsblock/out/handle ", targetEnd: `: ip daddr 169.254.169.254 tcp dport 80 reject with icmp port-unreachable comment "no metadata"`},
	}
	for _, tt := range tests {
		t.Run(tt.maker.Name, func(t *testing.T) {
			ctx := testContext(t)
			ns := newNamespace(t)
			serve := tt.serve
			if serve == nil {
				serve = serveAEMM
			}
			serve(ctx, t, ns)
			r := newRun(t, ns)
			for name, hcl := range tt.dropIns {
				r.dropIn(name, hcl)
			}
			if err := tt.maker.Make(ctx, ns); err != nil {
				t.Fatal(err)
			}
			before := firewallState(ctx, t, ns)

			// Found.
			rep, res := r.report(ctx, "check")
			if res.ExitCode != report.ExitFindings || !slices.Contains(findingRules(rep), "firewall_blocks_imds") {
				t.Fatalf("check: exit %d, findings %v; want exit 2 with firewall_blocks_imds\n%s", res.ExitCode, findingRules(rep), res.Stdout)
			}

			// Planned, exactly as apply will do it, and nothing changed yet.
			rep, res = r.report(ctx, "plan")
			planned := deleteActions(rep)
			if res.ExitCode != report.ExitFindings || len(planned) != 1 || planned[0].Status != "planned" {
				t.Fatalf("plan: exit %d, firewall_delete actions %+v; want one planned", res.ExitCode, planned)
			}
			if !strings.HasPrefix(planned[0].Target, tt.target) || !strings.HasSuffix(planned[0].Target, tt.targetEnd) {
				t.Errorf("plan target %q, want %q…%q", planned[0].Target, tt.target, tt.targetEnd)
			}
			if got := firewallState(ctx, t, ns); got != before {
				t.Errorf("plan changed the rules:\n%s", cmp.Diff(before, got))
			}

			// Applied: IMDS healthy again, the blocker gone.
			rep, res = r.report(ctx, "apply")
			applied := deleteActions(rep)
			if res.ExitCode != report.ExitHealthy || !rep.Healthy || rep.IMDS == nil || rep.IMDS.Class != "ok" {
				t.Fatalf("apply: exit %d, healthy %v, imds %+v, findings %v, actions %+v\n%s", res.ExitCode, rep.Healthy, rep.IMDS, findingRules(rep), applied, res.Stderr)
			}
			if len(applied) != 1 || applied[0].Status != "applied" || applied[0].ID != planned[0].ID || applied[0].Detail != planned[0].Detail {
				t.Errorf("apply actions %+v, want the planned one %+v applied", applied, planned[0])
			}
			if err := tt.maker.Gone(ctx, ns); err != nil {
				t.Error(err)
			}

			// A second apply finds nothing to do.
			rep, res = r.report(ctx, "apply")
			if res.ExitCode != report.ExitHealthy || len(rep.Actions) != 0 {
				t.Errorf("second apply: exit %d, actions %+v; want exit 0 and none", res.ExitCode, rep.Actions)
			}

			// The ledger lists the change as revertible until undo reverts it.
			if got := pendingIDs(ctx, t, r); !slices.Equal(got, []string{planned[0].ID}) {
				t.Errorf("undo --list = %v, want [%s]", got, planned[0].ID)
			}

			// Undo puts back exactly what was there.
			rep, res = r.report(ctx, "undo", "--last")
			if len(rep.Actions) != 1 || rep.Actions[0].Status != "reverted" {
				t.Errorf("undo: actions %+v, want one reverted\n%s", rep.Actions, res.Stderr)
			} else if d := rep.Actions[0].Detail; !strings.Contains(d, " -I ") && !strings.Contains(d, "| nft -j -f -") {
				t.Errorf("undo detail %q is not the insertion undo ran", d)
			}
			if got := firewallState(ctx, t, ns); got != before {
				t.Errorf("undo did not restore the rules (-before +after):\n%s", cmp.Diff(before, got))
			}
			if tt.maker.Gone(ctx, ns) == nil {
				t.Error("the rule is still gone after undo")
			}
			if got := pendingIDs(ctx, t, r); len(got) != 0 {
				t.Errorf("undo --list after undo = %v, want nothing", got)
			}
		})
	}
}

// TestFirewallSharedChain is issue 8's LOGDROP example: the DROP in a chain that INPUT's
// default-deny and a block of 10.9.9.9 also jump to must stay; apply deletes the one jump
// only IMDS's traffic takes, and undo puts it back. The same with native nft, where the
// input hook shares the chain.
func TestFirewallSharedChain(t *testing.T) {
	tests := []struct {
		maker harness.Maker
		// target of the one firewall_delete action (nft: prefix and suffix around the
		// handle), and the other rules' checks that must hold after apply.
		target, targetEnd string
		kept              [][]string
		// healthy: IMDS works after apply. In the iptables example INPUT's default-deny
		// also drops IMDS's replies on the namespace's loopback: a host rule imdsmend does
		// not touch, so the run stays unhealthy (exit 2) and says so.
		healthy bool
	}{
		{
			maker:  harness.SharedChainIMDS,
			target: "nft/ipv4/filter/OUTPUT: -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j LOGDROP",
			kept: [][]string{
				{"iptables", "-w", "-C", "LOGDROP", "-j", "DROP"},
				{"iptables", "-w", "-C", "INPUT", "-j", "LOGDROP"},
				{"iptables", "-w", "-C", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"},
				{"iptables", "-w", "-C", "OUTPUT", "-d", "10.9.9.9/32", "-j", "LOGDROP"},
			},
		},
		{
			maker:  harness.NftSharedChainIMDS,
			target: "nftables/inet shared/out/handle ", targetEnd: ": ip daddr 169.254.169.254 tcp dport 80 jump deny",
			kept: [][]string{
				{"sh", "-c", "nft list chain inet shared deny | grep -q drop"},
				{"sh", "-c", "nft list chain inet shared in | grep -q 'jump deny'"},
			},
			healthy: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.maker.Name, func(t *testing.T) {
			ctx := testContext(t)
			ns := newNamespace(t)
			serveAEMM(ctx, t, ns)
			// No fastDrop here: on a loaded machine its shorter probe budget can run out
			// while the firewall is read, and the test is about which rule goes.
			r := newRun(t, ns)
			if err := tt.maker.Make(ctx, ns); err != nil {
				t.Fatal(err)
			}
			before := firewallState(ctx, t, ns)

			rep, res := r.report(ctx, "plan")
			planned := deleteActions(rep)
			if len(planned) != 1 || !strings.HasPrefix(planned[0].Target, tt.target) || !strings.HasSuffix(planned[0].Target, tt.targetEnd) {
				t.Fatalf("plan: exit %d, firewall_delete actions %+v; want one deleting %q…%q\n%s", res.ExitCode, planned, tt.target, tt.targetEnd, res.Stderr)
			}
			if f := blocksFinding(rep); f == nil || !strings.Contains(f.Summary, "kept: broad") || !strings.Contains(f.Summary, "deleted by apply: IMDS's own jump to ") {
				t.Errorf("finding %+v does not say the shared rule is kept as broad and IMDS's jump to it deleted", f)
			}

			rep, res = r.report(ctx, "apply")
			if applied := deleteActions(rep); len(applied) != 1 || applied[0].Status != "applied" || applied[0].ID != planned[0].ID {
				t.Fatalf("apply: exit %d, actions %+v; want the planned one applied\n%s", res.ExitCode, rep.Actions, res.Stderr)
			}
			if tt.healthy != (res.ExitCode == report.ExitHealthy) {
				t.Errorf("apply: exit %d, findings %v; want healthy %v", res.ExitCode, findingRules(rep), tt.healthy)
			}
			if err := tt.maker.Gone(ctx, ns); err != nil {
				t.Error(err)
			}
			for _, check := range tt.kept {
				if out, err := ns.Exec(ctx, nil, check[0], check[1:]...); err != nil || out.ExitCode != 0 {
					t.Errorf("a rule that serves other traffic is gone: %v: exit %d %s", check, out.ExitCode, out.Stderr)
				}
			}

			rep, res = r.report(ctx, "undo", "--last")
			if len(rep.Actions) != 1 || rep.Actions[0].Status != "reverted" {
				t.Errorf("undo: actions %+v, want one reverted\n%s", rep.Actions, res.Stderr)
			}
			if got := firewallState(ctx, t, ns); got != before {
				t.Errorf("undo did not restore the rules (-before +after):\n%s", cmp.Diff(before, got))
			}
		})
	}
}

// TestFirewallDeleteCopies: of three identical rules, a policy that lists two deletes two
// and one remains; undo brings back those two, not more.
func TestFirewallDeleteCopies(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	serveAEMM(ctx, t, ns)
	rule := []string{"OUTPUT", "-p", "tcp", "-d", harness.IMDSAddr + "/32", "-j", "REJECT"}
	for range 3 {
		if err := harness.RejectMaker(rule).Make(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	before := firewallState(ctx, t, ns)
	r := newRun(t, ns)
	r.dropIn("60-two-copies.hcl", `
rule "firewall_blocks_imds" {
  enabled = false
}

rule "two_copies" {
  when     = length([for r in facts.firewall.rules : r if r.blocks]) > 0
  severity = "warning"
  summary  = "two of the copies go"
  remediate "firewall_delete" {
    rules = [for r in facts.firewall.rules : r if r.blocks && r.position <= 2]
  }
}
`)
	rep, res := r.report(ctx, "apply")
	if a := deleteActions(rep); len(a) != 1 || a[0].Status != "applied" {
		t.Fatalf("apply: exit %d, actions %+v\n%s", res.ExitCode, rep.Actions, res.Stderr)
	}
	out, err := ns.Exec(ctx, nil, "iptables", "-w", "-S", "OUTPUT")
	if err != nil || strings.Count(out.Stdout, "-j REJECT") != 1 {
		t.Errorf("after apply, OUTPUT holds:\n%s\nwant one copy left (%v)", out.Stdout, err)
	}
	r.report(ctx, "undo", "--last")
	if got := firewallState(ctx, t, ns); got != before {
		t.Errorf("undo did not bring back exactly the two copies (-before +after):\n%s", cmp.Diff(before, got))
	}
}

// TestFirewallBroadBlockerKept: a REJECT of 1.0.0.0-254.255.255.255 stops IMDS but far more
// too. It is reported, with why it is kept and what would open IMDS, and never deleted:
// apply puts an ACCEPT for IMDS before it (firewall_allow; TestFirewallDefaultDeny shows
// IMDS answering one hop away) and the REJECT stays. Undo takes the ACCEPT out again.
func TestFirewallBroadBlockerKept(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	serveAEMM(ctx, t, ns)
	if err := harness.WideRejectIMDS.Make(ctx, ns); err != nil {
		t.Fatal(err)
	}
	before := firewallState(ctx, t, ns)
	r := newRun(t, ns)
	rep, res := r.report(ctx, "plan")
	if res.ExitCode != report.ExitFindings || len(deleteActions(rep)) != 0 {
		t.Fatalf("plan: exit %d, actions %+v; want exit 2 and no deletion", res.ExitCode, rep.Actions)
	}
	checkKeptFinding(t, rep, "-m iprange --dst-range 1.0.0.0-254.255.255.255 -j REJECT --reject-with icmp-port-unreachable (kept: broad, it stops other traffic too)")
	rep, res = r.report(ctx, "apply")
	if len(deleteActions(rep)) != 0 || len(rep.Actions) != 1 || rep.Actions[0].Kind != "firewall_allow" || rep.Actions[0].Status != "applied" {
		t.Fatalf("apply: exit %d, actions %+v; want one applied firewall_allow and no deletion", res.ExitCode, rep.Actions)
	}
	if out, err := ns.Exec(ctx, nil, "iptables", "-w", "-C", "OUTPUT", "-p", "tcp", "-m", "iprange", "--dst-range", "1.0.0.0-254.255.255.255", "-j", "REJECT"); err != nil || out.ExitCode != 0 {
		t.Errorf("the broad rule is gone after apply (%v)", err)
	}
	r.report(ctx, "undo", "--last")
	if got := firewallState(ctx, t, ns); got != before {
		t.Errorf("undo did not restore the rules (-before +after):\n%s", cmp.Diff(before, got))
	}
}

// checkKeptFinding checks that firewall_blocks_imds names the kept rule with its reason,
// and that its hint says what would open IMDS.
func checkKeptFinding(t *testing.T, rep *report.Report, kept string) {
	t.Helper()
	f := blocksFinding(rep)
	if f == nil {
		t.Fatalf("no firewall_blocks_imds finding among %v", findingRules(rep))
	}
	if !strings.Contains(f.Summary, kept) {
		t.Errorf("summary %q does not contain %q", f.Summary, kept)
	}
	if !strings.Contains(f.Hint, "-m owner --uid-owner 0 -j ACCEPT") || !strings.Contains(f.Hint, "firewall_allow") {
		t.Errorf("hint %q does not say what would open IMDS", f.Hint)
	}
}

// blocksFinding is the report's firewall_blocks_imds finding, nil without one.
func blocksFinding(rep *report.Report) *report.Finding {
	for i := range rep.Findings {
		if rep.Findings[i].Rule == "firewall_blocks_imds" {
			return &rep.Findings[i]
		}
	}
	return nil
}

// pendingIDs is what `imdsmend undo --list` says could still be reverted.
func pendingIDs(ctx context.Context, t *testing.T, r *run) []string {
	t.Helper()
	res := r.exec(ctx, "undo", "--list", "--format", "json")
	var rows []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &rows); res.ExitCode != 0 || err != nil {
		t.Fatalf("undo --list: exit %d, %v\n%s%s", res.ExitCode, err, res.Stdout, res.Stderr)
	}
	ids := []string{}
	for _, row := range rows {
		ids = append(ids, row.ID)
	}
	return ids
}

// TestFirewallDeliberateRestrictions: rules AWS documents as deliberate stay unless the
// policy opts in. The article's owner-scoped REJECT is an info finding and the run is
// healthy; a drop-in naming it by pattern has it removed, and undo brings it back.
func TestFirewallDeliberateRestrictions(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	serveAEMM(ctx, t, ns)
	if err := harness.OwnerRejectIMDS.Make(ctx, ns); err != nil {
		t.Fatal(err)
	}
	before := firewallState(ctx, t, ns)
	r := newRun(t, ns)

	rep, res := r.report(ctx, "check")
	if res.ExitCode != report.ExitHealthy || !rep.Healthy {
		t.Fatalf("check: exit %d, healthy %v, findings %v; want healthy", res.ExitCode, rep.Healthy, findingRules(rep))
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Rule != "firewall_restricts_imds" || rep.Findings[0].Severity != "info" {
		t.Fatalf("findings %+v, want one info firewall_restricts_imds", rep.Findings)
	}
	if !strings.Contains(rep.Findings[0].Summary, "non_root: nft/ipv4/filter/OUTPUT: -d 169.254.169.254/32 -p tcp -m owner --uid-owner 1000-10000 -j REJECT") {
		t.Errorf("summary %q does not name the rule and its scope", rep.Findings[0].Summary)
	}
	for _, command := range []string{"plan", "apply"} {
		rep, res = r.report(ctx, command)
		if res.ExitCode != report.ExitHealthy || len(rep.Actions) != 0 {
			t.Errorf("%s: exit %d, actions %+v; want exit 0 and none", command, res.ExitCode, rep.Actions)
		}
	}
	if got := firewallState(ctx, t, ns); got != before {
		t.Fatalf("the deliberate rule was touched:\n%s", cmp.Diff(before, got))
	}

	// Opting in, per rule pattern.
	r.dropIn("60-drop-owner-rule.hcl", `
rule "remove_uid_range_rule" {
  when     = length([for r in facts.firewall.rules : r if strcontains(r.spec, "--uid-owner 1000-10000")]) > 0
  severity = "warning"
  summary  = "the uid 1000-10000 IMDS restriction is no longer wanted here"
  remediate "firewall_delete" {
    rules = [for r in facts.firewall.rules : r if strcontains(r.spec, "--uid-owner 1000-10000")]
  }
}
`)
	rep, res = r.report(ctx, "apply")
	if res.ExitCode != report.ExitHealthy || len(deleteActions(rep)) != 1 || deleteActions(rep)[0].Status != "applied" {
		t.Fatalf("apply with the opt-in: exit %d, actions %+v", res.ExitCode, rep.Actions)
	}
	if err := harness.OwnerRejectIMDS.Gone(ctx, ns); err != nil {
		t.Error(err)
	}
	r.report(ctx, "undo", "--last")
	if got := firewallState(ctx, t, ns); got != before {
		t.Errorf("undo did not restore the rule:\n%s", cmp.Diff(before, got))
	}
}

// keptOnPurpose is docs/firewall.md's drop-in for a host where root is meant not to reach
// IMDS: both findings a kept blocker causes are lowered to info.
const keptOnPurpose = `
rule "firewall_blocks_imds" { severity = "info" }
rule "imds_unreachable" { severity = "info" }
`

// TestFirewallDeliberateBlockerKept: AWS's "only this user" pattern (! --uid-owner) also
// refuses root, and so does a rule its owner marked "imdsmend:keep". Both are critical
// findings that say which rule is kept and why, and neither is deleted by the default
// policy. The documented drop-in for a deliberate block makes the run healthy.
func TestFirewallDeliberateBlockerKept(t *testing.T) {
	for name, tt := range map[string]struct {
		rule []string
		why  string // how the finding names the rule and why it stays
	}{
		"owner-scoped": {[]string{"-p", "tcp", "-d", harness.IMDSAddr, "-m", "owner", "!", "--uid-owner", "1001", "-j", "REJECT"},
			"-m owner ! --uid-owner 1001 -j REJECT --reject-with icmp-port-unreachable (kept: owner-scoped, deliberate)"},
		"keep comment": {[]string{"-p", "tcp", "-d", harness.IMDSAddr, "-m", "comment", "--comment", "imdsmend:keep (ticket 42)", "-j", "REJECT"},
			`-m comment --comment "imdsmend:keep (ticket 42)" -j REJECT --reject-with icmp-port-unreachable (kept: marked imdsmend:keep)`},
	} {
		t.Run(name, func(t *testing.T) {
			rule := tt.rule
			ctx := testContext(t)
			ns := newNamespace(t)
			serveAEMM(ctx, t, ns)
			res, err := ns.Exec(ctx, nil, "iptables", append([]string{"-w", "-I", "OUTPUT"}, rule...)...)
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("iptables: %v %s", err, res.Stderr)
			}
			before := firewallState(ctx, t, ns)
			r := newRun(t, ns)
			rep, out := r.report(ctx, "apply")
			if out.ExitCode != report.ExitFindings || !slices.Contains(findingRules(rep), "firewall_blocks_imds") || len(deleteActions(rep)) != 0 {
				t.Errorf("apply: exit %d, findings %v, actions %+v; want exit 2, firewall_blocks_imds and no deletion", out.ExitCode, findingRules(rep), rep.Actions)
			}
			checkKeptFinding(t, rep, tt.why)
			if got := firewallState(ctx, t, ns); got != before {
				t.Errorf("the rule was touched:\n%s", cmp.Diff(before, got))
			}

			// docs/firewall.md: when root is meant not to reach IMDS here, lowering the
			// two findings the rule causes to info makes the run healthy.
			r.dropIn("70-imds-blocked-on-purpose.hcl", keptOnPurpose)
			rep, out = r.report(ctx, "apply")
			if out.ExitCode != report.ExitHealthy || !rep.Healthy {
				t.Errorf("apply with the findings lowered to info: exit %d, findings %+v; want exit 0", out.ExitCode, rep.Findings)
			}
		})
	}
}

// TestFirewallIPv6RuleSeenWithoutIPv6: with IPv6 off, a rule refusing [fd00:ec2::254] is
// reported (info: it doesn't stop what imdsmend uses) and left alone.
func TestFirewallIPv6RuleSeenWithoutIPv6(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	serveAEMM(ctx, t, ns)
	if err := harness.IPv6RejectIMDS.Make(ctx, ns); err != nil {
		t.Fatal(err)
	}
	rep, res := newRun(t, ns).report(ctx, "apply")
	if res.ExitCode != report.ExitHealthy || len(rep.Actions) != 0 || !slices.Equal(findingRules(rep), []string{"firewall_restricts_imds"}) {
		t.Fatalf("apply: exit %d, findings %v, actions %+v", res.ExitCode, findingRules(rep), rep.Actions)
	}
	if !strings.Contains(rep.Findings[0].Summary, "nft/ipv6/filter/OUTPUT: -d fd00:ec2::254/128") {
		t.Errorf("summary %q does not name the ip6tables rule", rep.Findings[0].Summary)
	}
	if harness.IPv6RejectIMDS.Gone(ctx, ns) == nil {
		t.Error("the ip6tables rule was removed")
	}
}

// TestFirewallReportMode: in report mode apply changes nothing and says why.
func TestFirewallReportMode(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	serveAEMM(ctx, t, ns)
	if err := harness.RejectIMDS.Make(ctx, ns); err != nil {
		t.Fatal(err)
	}
	before := firewallState(ctx, t, ns)
	r := newRun(t, ns)
	r.dropIn("50-report.hcl", "settings {\n  mode = \"report\"\n}\n")
	rep, res := r.report(ctx, "apply")
	acts := deleteActions(rep)
	if res.ExitCode != report.ExitFindings || len(acts) != 1 || acts[0].Status != "skipped" || !strings.Contains(acts[0].Error, "report") {
		t.Errorf("apply in report mode: exit %d, actions %+v; want one skipped action", res.ExitCode, acts)
	}
	if got := firewallState(ctx, t, ns); got != before {
		t.Errorf("report mode changed the rules:\n%s", cmp.Diff(before, got))
	}
}

// TestFirewallHeldLock: while another program holds the xtables lock, legacy rules can't
// be read; the firewall rules are undecided, not absent, and nothing is changed. The lock
// is a private file (XTABLES_LOCKFILE), never the host's.
func TestFirewallHeldLock(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	serveAEMM(ctx, t, ns)
	if err := harness.LegacyRejectIMDS.Make(ctx, ns); err != nil {
		t.Fatal(err)
	}
	before := firewallState(ctx, t, ns)
	lock := filepath.Join(t.TempDir(), "xtables.lock")
	env := []string{"XTABLES_LOCKFILE=" + lock}
	if _, err := ns.Start("flock", lock, "sleep", "600"); err != nil {
		t.Fatal(err)
	}
	waitLocked(ctx, t, lock)

	r := newRun(t, ns)
	for _, command := range []string{"check", "apply"} {
		res, err := ns.Exec(ctx, env, bins.Imdsmend, r.args(command, "--format", "json")...)
		if err != nil {
			t.Fatal(err)
		}
		rep := decodeReport(t, command, res)
		var undecided []string
		for _, u := range rep.Unknown {
			undecided = append(undecided, u.Rule)
			if strings.HasPrefix(u.Rule, "firewall_") && !strings.Contains(u.Reason, "xtables lock") {
				t.Errorf("%s: %s undecided for %q, which does not name the lock", command, u.Rule, u.Reason)
			}
		}
		if !slices.Contains(undecided, "firewall_blocks_imds") || res.ExitCode != report.ExitFindings || len(deleteActions(rep)) != 0 {
			t.Errorf("%s: exit %d, undecided %v, actions %+v; want exit 2, firewall_blocks_imds undecided, nothing done", command, res.ExitCode, undecided, rep.Actions)
		}
	}
	if got := firewallState(ctx, t, ns); got != before {
		t.Errorf("rules changed under a held lock:\n%s", cmp.Diff(before, got))
	}
}

// waitLocked waits until someone holds the lock file.
func waitLocked(ctx context.Context, t *testing.T, lock string) {
	t.Helper()
	for {
		if err := exec.CommandContext(ctx, "flock", "-n", lock, "true").Run(); err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() == 1 {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("nobody took %s", lock)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestFirewallMissingTools: without iptables and nft installed a host with no rules is
// fine, and one whose kernel holds rules gets a clear error instead of an empty list.
func TestFirewallMissingTools(t *testing.T) {
	ctx := testContext(t)
	empty := t.TempDir()
	env := []string{"PATH=" + empty}

	ns := newNamespace(t)
	serveAEMM(ctx, t, ns)
	r := newRun(t, ns)
	f := factsIn(ctx, t, ns, r, env)
	if f.Firewall == nil || len(f.Firewall.Rules) != 0 || !f.Probes["firewall"].OK {
		t.Errorf("no rules, no tools: firewall %+v, probe %+v; want an empty section", f.Firewall, f.Probes["firewall"])
	}

	if err := harness.LegacyRejectIMDS.Make(ctx, ns); err != nil {
		t.Fatal(err)
	}
	before := firewallState(ctx, t, ns)
	f = factsIn(ctx, t, ns, r, env)
	if f.Firewall != nil || !strings.Contains(f.Probes["firewall"].Error, "not installed") {
		t.Errorf("legacy rules, no tools: firewall %+v, probe %+v; want a failed probe naming the missing tool", f.Firewall, f.Probes["firewall"])
	}
	res, err := ns.Exec(ctx, env, bins.Imdsmend, r.args("apply", "--format", "json")...)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != report.ExitFindings {
		t.Errorf("apply without tools: exit %d, want 2\n%s", res.ExitCode, res.Stdout)
	}
	if got := firewallState(ctx, t, ns); got != before {
		t.Errorf("rules changed without tools:\n%s", cmp.Diff(before, got))
	}
}

func factsIn(ctx context.Context, t *testing.T, ns *harness.Namespace, r *run, env []string) *facts.Facts {
	t.Helper()
	res, err := ns.Exec(ctx, env, bins.Imdsmend, r.args("facts", "--format", "json")...)
	if err != nil {
		t.Fatal(err)
	}
	var f facts.Facts
	if err := json.Unmarshal([]byte(res.Stdout), &f); err != nil {
		t.Fatalf("facts: exit %d: %v\n%s", res.ExitCode, err, res.Stderr)
	}
	return &f
}

// actionsOf are the report's actions of one kind.
func actionsOf(rep *report.Report, kind string) []report.Action {
	var out []report.Action
	for _, a := range rep.Actions {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

func deleteActions(rep *report.Report) []report.Action { return actionsOf(rep, "firewall_delete") }

// firewallState is every rule in ns (harness.Namespace.FirewallState).
func firewallState(ctx context.Context, t *testing.T, ns *harness.Namespace) string {
	return mustState(t)(ns.FirewallState(ctx))
}

// mustState ends the test when reading a state failed.
func mustState(t *testing.T) func(string, error) string {
	t.Helper()
	return func(s string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}
