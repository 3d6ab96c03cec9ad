package e2e

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/tests/harness"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
)

// TestCheckAsAnOrdinaryUser: on a healthy instance, `check` run by nobody says once which
// facts need root and which capability, leaves the rules that read them unknown with that
// reason (not iptables' errors, twice, nor HCL's "attempt to get attribute from null
// value"), and exits 2 as any run with undecided rules does.
func TestCheckAsAnOrdinaryUser(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	if _, err := harness.StartSim(ctx, ns, bins.Imdssim, sim.FaultOK); err != nil {
		t.Fatal(err)
	}
	bin := forNobody(t, bins.Imdsmend)
	policy, err := harness.WritePolicy(filepath.Dir(bin))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"check", "--policy", policy, "--state-dir", filepath.Join(filepath.Dir(bin), "state")}
	asNobody := func(extra ...string) harness.Result {
		t.Helper()
		res, err := ns.Exec(ctx, nil, "setpriv", append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups", bin}, append(args, extra...)...)...)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res, err := ns.Exec(ctx, nil, bin, args...); err != nil || res.ExitCode != report.ExitHealthy {
		t.Fatalf("as root: %v, exit %d; want a healthy instance\n%s%s", err, res.ExitCode, res.Stdout, res.Stderr)
	}

	res := asNobody("--format", "json")
	rep := decodeReport(t, "check", res)
	if res.ExitCode != report.ExitFindings || rep.Healthy || rep.IMDS == nil || !rep.IMDS.Reachable || len(rep.Findings) > 0 {
		t.Errorf("exit %d, healthy %v, imds %+v, findings %v; want exit 2, IMDS reachable, no finding", res.ExitCode, rep.Healthy, rep.IMDS, rep.Findings)
	}
	const reason = "facts.firewall is null (probe firewall failed: not run: this process lacks CAP_NET_ADMIN (not root?))"
	const containersReason = "facts.containers is null (probe containers failed: not run: this process lacks CAP_SYS_ADMIN (not root?))"
	var unknown []string
	for _, u := range rep.Unknown {
		unknown = append(unknown, u.Rule)
		want := reason
		if u.Rule == "hop_limit_too_low" {
			want = containersReason
		}
		if u.Reason != want {
			t.Errorf("%s is unknown because %q, want %q", u.Rule, u.Reason, want)
		}
	}
	// The test beds' policy turns proxy_leak off.
	if want := []string{"hop_limit_too_low", "firewall_blocks_imds", "firewall_restricts_imds"}; !slices.Equal(unknown, want) {
		t.Errorf("unknown rules %q, want %q", unknown, want)
	}
	const note = "imdsmend: not run as root, so the firewall and proxy and containers facts are not gathered (reading the iptables and nftables rules needs CAP_NET_ADMIN; reading other processes' environments (/proc/PID/environ) needs CAP_SYS_PTRACE; reading the containers' network namespaces from inside (setns) needs CAP_SYS_ADMIN); the rules that use them are unknown. Run imdsmend as root for a full verdict.\n"
	if strings.Count(res.Stderr, note) != 1 || strings.Count(res.Stderr, "CAP_NET_ADMIN") != 1 {
		t.Errorf("stderr does not say once which facts need root:\n%s", res.Stderr)
	}

	text := asNobody()
	for _, noise := range []string{"Permission denied", "Attempt to get attribute", "iptables-nft-save"} {
		if strings.Contains(text.Stdout+text.Stderr, noise) {
			t.Errorf("the report repeats %q:\n%s%s", noise, text.Stdout, text.Stderr)
		}
	}
}
