package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/tests/ec2sim/ec2"
	"github.com/imdsmend/imdsmend/tests/harness"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
	"github.com/imdsmend/imdsmend/tests/simkit"
)

// ec2Bed is the one-hop layout with imdssim serving IMDS and the EC2 API for one instance
// in the IMDS namespace, and imdsmend in the Host allowed to call the API.
type ec2Bed struct {
	t   *testing.T
	hop *harness.Hop
	sim *harness.Sim
	r   *run
	env []string
}

func newEC2Bed(t *testing.T, ctx context.Context, containers int, creds bool, simFlags ...string) *ec2Bed {
	t.Helper()
	hop := newHop(t, containers)
	api := net.JoinHostPort(harness.HopIMDSPeer, "8081")
	s, err := harness.StartSim(ctx, hop.IMDS, bins.Imdssim, sim.FaultOK, append([]string{"--ec2", api, "--ec2-apply-after", "0"}, simFlags...)...)
	if err != nil {
		t.Fatal(err)
	}
	b := &ec2Bed{t: t, hop: hop, sim: s, r: newRun(t, hop.Host)}
	// The instance ID from the policy: this machine's own DMI tag or cloud-init files
	// must not name another.
	b.r.dropIn("20-ec2.hcl", fmt.Sprintf("settings {\n  allow { ec2_api = true }\n  ec2 { instance_id = %q }\n}\n", sim.InstanceID))
	// Nothing of this machine's AWS configuration takes part.
	b.env = []string{"AWS_ENDPOINT_URL_EC2=http://" + api, "AWS_REGION=" + ec2.DefaultRegion,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=",
		"AWS_PROFILE=", "AWS_WEB_IDENTITY_TOKEN_FILE=", "AWS_ROLE_ARN=", "AWS_CONTAINER_CREDENTIALS_FULL_URI=", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI="}
	if creds {
		b.env = append(b.env, "AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret")
	}
	return b
}

// report runs `imdsmend COMMAND --format json` in the Host with the bed's environment.
func (b *ec2Bed) report(ctx context.Context, command string, args ...string) (*report.Report, harness.Result) {
	b.t.Helper()
	res, err := b.hop.Host.Exec(ctx, b.env, bins.Imdsmend, b.r.args(command, append([]string{"--format", "json"}, args...)...)...)
	if err != nil {
		b.t.Fatal(err)
	}
	return decodeReport(b.t, command, res), res
}

// admin calls the EC2 simulator's admin, which imdssim serves under /ec2/ on its own
// admin socket.
func (b *ec2Bed) admin(ctx context.Context, method, path string, form url.Values, out any) {
	b.t.Helper()
	if err := simkit.NewAdminClient("imdssim/ec2", "unix:"+b.sim.Socket).Do(ctx, method, path, form, out); err != nil {
		b.t.Fatal(err)
	}
}

func (b *ec2Bed) setOptions(ctx context.Context, kv ...string) {
	b.t.Helper()
	form := url.Values{"id": {sim.InstanceID}}
	for i := 0; i+1 < len(kv); i += 2 {
		form.Set(kv[i], kv[i+1])
	}
	b.admin(ctx, http.MethodPost, ec2.AdminOptions, form, nil)
}

func (b *ec2Bed) options(ctx context.Context) ec2.Options {
	b.t.Helper()
	var in ec2.Instance
	b.admin(ctx, http.MethodGet, ec2.AdminInstances+"?id="+sim.InstanceID, nil, &in)
	return in.Options
}

func (b *ec2Bed) stats(ctx context.Context) ec2.Stats {
	b.t.Helper()
	var st ec2.Stats
	b.admin(ctx, http.MethodGet, ec2.AdminStats, nil, &st)
	return st
}

func (b *ec2Bed) resetStats(ctx context.Context) {
	b.t.Helper()
	b.admin(ctx, http.MethodPost, ec2.AdminReset, url.Values{}, nil)
}

// metadataActions lists the metadata_options actions as "status" or "status: error".
func metadataActions(rep *report.Report) []report.Action { return actionsOf(rep, "metadata_options") }

// TestEC2DisabledEndpoint: a disabled HttpEndpoint is found (from IMDS's 403 and the
// API's value), apply enables it through the API (dry run, call, poll until applied), IMDS
// answers again, and undo restores the recorded previous value.
func TestEC2DisabledEndpoint(t *testing.T) {
	ctx := testContext(t)
	b := newEC2Bed(t, ctx, 0, true)
	b.setOptions(ctx, "http_endpoint", "disabled")

	rep, res := b.report(ctx, "check")
	if res.ExitCode != 2 || !slices.Contains(findingRules(rep), "imds_endpoint_disabled") {
		t.Fatalf("check: exit %d, findings %v\n%s", res.ExitCode, findingRules(rep), res.Stderr)
	}
	b.resetStats(ctx)
	rep, res = b.report(ctx, "apply")
	acts := metadataActions(rep)
	if res.ExitCode != 0 || len(acts) != 1 || acts[0].Status != "applied" || acts[0].Error != "" {
		t.Fatalf("apply: exit %d, actions %+v, findings %v\n%s", res.ExitCode, rep.Actions, findingRules(rep), res.Stderr)
	}
	if !rep.IMDS.Reachable {
		t.Errorf("after apply IMDS is %+v, want it answering", rep.IMDS)
	}
	if got := b.options(ctx).HTTPEndpoint; got != ec2.Enabled {
		t.Errorf("HttpEndpoint after apply = %s", got)
	}
	if st := b.stats(ctx); st.Modified != 1 {
		t.Errorf("ModifyInstanceMetadataOptions that changed something: %d, want 1 (stats %+v)", st.Modified, st)
	}

	rep, res = b.report(ctx, "undo", "--last")
	if res.ExitCode != 0 || len(rep.Actions) != 1 || rep.Actions[0].Status != "reverted" {
		t.Fatalf("undo: exit %d, actions %+v\n%s", res.ExitCode, rep.Actions, res.Stderr)
	}
	if got := b.options(ctx).HTTPEndpoint; got != ec2.Disabled {
		t.Errorf("HttpEndpoint after undo = %s, want the recorded disabled", got)
	}
}

// TestEC2HealthyCheckCallsOnce: a healthy check with API facts makes one DescribeInstances,
// and the next within settings.ec2.interval none: the answer is kept in state.json.
func TestEC2HealthyCheckCallsOnce(t *testing.T) {
	ctx := testContext(t)
	b := newEC2Bed(t, ctx, 0, true)
	var calls []int64
	for range 2 {
		rep, res := b.report(ctx, "check")
		if res.ExitCode != 0 {
			t.Fatalf("check: exit %d, findings %v\n%s", res.ExitCode, findingRules(rep), res.Stderr)
		}
		calls = append(calls, b.stats(ctx).ByAction["DescribeInstances"])
	}
	if d := cmp.Diff([]int64{1, 1}, calls); d != "" {
		t.Errorf("DescribeInstances after each check (-want +got):\n%s", d)
	}
	data, err := os.ReadFile(filepath.Join(b.r.stateDir, "state.json"))
	if err != nil || !strings.Contains(string(data), `"ec2"`) {
		t.Errorf("state.json keeps no ec2 answer: %v\n%s", err, data)
	}
}

// TestEC2Refusals: without credentials, or unauthorized, or with a wrong region, an
// unknown instance or a change never applied, the run is bounded, says who must change
// what, and leaves the ledger consistent; a refusal costs one call and nothing changes.
func TestEC2Refusals(t *testing.T) {
	for _, tc := range []struct {
		name     string
		creds    bool
		simFlags []string
		dropIn   string
		args     []string
		// wantStatus and wantError describe the one metadata_options action.
		wantStatus string
		wantError  string
		wantModify int64 // ModifyInstanceMetadataOptions calls, dry runs included
		wantFound  string
		wantAfter  string // HttpEndpoint after the run
	}{
		{name: "no credentials", wantStatus: "failed", wantError: "no_credentials|IMDS is not used for credentials",
			wantModify: 0, wantFound: "ec2_api_unavailable", wantAfter: ec2.Disabled},
		{name: "unauthorized", creds: true, simFlags: []string{"--ec2-fault", "unauthorized", "--ec2-fault-actions", "ModifyInstanceMetadataOptions"},
			wantStatus: "failed", wantError: "UnauthorizedOperation|an IAM administrator must allow ec2:ModifyInstanceMetadataOptions",
			wantModify: 1, wantFound: "imds_endpoint_disabled", wantAfter: ec2.Disabled},
		{name: "wrong region", creds: true, dropIn: "settings {\n  ec2 { region = \"eu-west-3\" }\n}\n",
			wantStatus: "failed", wantError: "InvalidInstanceID.NotFound|check the instance ID and region",
			wantModify: 0, wantFound: "ec2_api_unavailable", wantAfter: ec2.Disabled},
		{name: "unknown instance", creds: true, dropIn: "settings {\n  ec2 { instance_id = \"i-0123456789abcdef1\" }\n}\n",
			wantStatus: "failed", wantError: "InvalidInstanceID.NotFound",
			wantModify: 0, wantFound: "ec2_api_unavailable", wantAfter: ec2.Disabled},
		{name: "never applied", creds: true, simFlags: []string{"--ec2-fault", "never-applied"}, args: []string{"--timeout", "9s"},
			wantStatus: "applied", wantError: "the change was accepted|undo reverts it", wantModify: 2, wantFound: "imds_endpoint_disabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			b := newEC2Bed(t, ctx, 0, tc.creds, tc.simFlags...)
			if tc.dropIn != "" {
				b.r.dropIn("30-case.hcl", tc.dropIn)
			}
			b.setOptions(ctx, "http_endpoint", "disabled")
			b.resetStats(ctx)
			rep, res := b.report(ctx, "apply", tc.args...)
			acts := metadataActions(rep)
			if res.ExitCode != 2 || len(acts) != 1 {
				t.Fatalf("apply: exit %d, actions %+v\n%s", res.ExitCode, rep.Actions, res.Stderr)
			}
			a := acts[0]
			if string(a.Status) != tc.wantStatus {
				t.Errorf("status = %s (%s), want %s", a.Status, a.Error, tc.wantStatus)
			}
			for _, want := range strings.Split(tc.wantError, "|") {
				if !strings.Contains(a.Error, want) && !strings.Contains(fmt.Sprint(rep.Findings), want) {
					t.Errorf("neither the action's error nor a finding says %q:\naction: %s\nfindings: %+v", want, a.Error, rep.Findings)
				}
			}
			if !slices.Contains(findingRules(rep), tc.wantFound) {
				t.Errorf("findings %v, want %s among them", findingRules(rep), tc.wantFound)
			}
			if got := b.stats(ctx).ByAction["ModifyInstanceMetadataOptions"]; got != tc.wantModify {
				t.Errorf("ModifyInstanceMetadataOptions calls = %d, want %d", got, tc.wantModify)
			}
			if tc.wantAfter != "" {
				if got := b.options(ctx).HTTPEndpoint; got != tc.wantAfter {
					t.Errorf("HttpEndpoint = %s, want %s", got, tc.wantAfter)
				}
			}
			// The ledger holds nothing to undo but a change the API accepted.
			undo, res := b.report(ctx, "undo", append([]string{"--last"}, tc.args...)...)
			if tc.wantStatus == "applied" {
				if len(undo.Actions) != 1 {
					t.Errorf("undo of the accepted change: exit %d, actions %+v\n%s", res.ExitCode, undo.Actions, res.Stderr)
				}
			} else if len(undo.Actions) != 0 {
				t.Errorf("undo after a refused change: %+v, want nothing to undo", undo.Actions)
			}
		})
	}
}

// TestEC2HopLimitContainer: with hop limit 1 a container one forwarded hop behind the Host
// gets no token while the Host does; imdsmend finds it from the container's fingerprint
// and the API's value, sets the hop limit to 2 through the API, proves it from the
// container, and the container's token PUT succeeds afterwards.
func TestEC2HopLimitContainer(t *testing.T) {
	ctx := testContext(t)
	b := newEC2Bed(t, ctx, 1, true)
	b.setOptions(ctx, "hop_limit", "1")
	container := b.hop.Containers[0]
	inDockerScope(t, container, startSleeper(t, container))
	if got := curlIMDS(t, ctx, container, "PUT"); got.Status != "000" {
		t.Fatalf("container's token PUT at hop limit 1: %+v, want no answer", got)
	}

	rep, res := b.report(ctx, "apply")
	acts := metadataActions(rep)
	if res.ExitCode != 0 || len(acts) != 1 || acts[0].Status != "applied" || acts[0].Rule != "hop_limit_too_low" {
		t.Fatalf("apply: exit %d, actions %+v, findings %v\n%s", res.ExitCode, rep.Actions, findingRules(rep), res.Stderr)
	}
	if !strings.Contains(acts[0].Detail, "hop_limit 1 → 2") || !strings.Contains(acts[0].Detail, "1 of 1 probed get a token now") {
		t.Errorf("detail = %q, want the change and the container's re-probe", acts[0].Detail)
	}
	if got := b.options(ctx).HopLimit; got != 2 {
		t.Errorf("hop limit after apply = %d", got)
	}
	if got := curlIMDS(t, ctx, container, "PUT"); got.Status != "200" {
		t.Errorf("container's token PUT after apply: %+v, want 200", got)
	}
}
