package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend"
	"github.com/imdsmend/imdsmend/fleet"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/tests/ec2sim/ec2"
)

// fleetBed is the EC2 simulator on loopback, in this process, with a small fleet of two
// accounts in two regions, and what runs imdsmend fleet against it. imdsmend reaches it
// through AWS_ENDPOINT_URL_EC2 and _STS with static credentials; IMDS is out of its reach.
type fleetBed struct {
	t    *testing.T
	sim  *ec2.Server
	url  string
	env  []string
	dir  string
	mu   sync.Mutex
	doom string // terminated just before the first ModifyInstanceMetadataOptions naming it
}

// The fleet's instances and the second account, reached through its role.
const (
	idOK       = "i-0f1ee7000000000a1"
	idDisabled = "i-0f1ee7000000000a2"
	idEKS      = "i-0f1ee7000000000a3"
	idLegacy   = "i-0f1ee7000000000a4"
	idDoomed   = "i-0f1ee7000000000a5"
	idECS      = "i-0f1ee7000000000a6"
	idOther    = "i-0f1ee7000000000a7"
	otherAcct  = "210987654321"
	badRole    = "arn:aws:iam::999999999999:role/imdsmend-fleet"
)

func newFleetBed(t *testing.T) *fleetBed {
	t.Helper()
	// eu-west-1 is unreachable: every connection to it is reset.
	sim := ec2.New(ec2.Config{ApplyAfter: ec2.DefaultApplyAfter, Throttle: ec2.DefaultRates, Fault: ec2.FaultReset, Regions: []string{"eu-west-1"}})
	opts := func(mod func(*ec2.Options)) ec2.Options {
		o := ec2.DefaultOptions()
		if mod != nil {
			mod(&o)
		}
		return o
	}
	name := func(n string, more ...ec2.Tag) []ec2.Tag { return append([]ec2.Tag{{Key: "Name", Value: n}}, more...) }
	for _, in := range []ec2.Instance{
		{ID: idOK, Tags: name("web"), Options: opts(nil)},
		{ID: idDisabled, Tags: name("batch"), Options: opts(func(o *ec2.Options) { o.HTTPEndpoint = ec2.Disabled })},
		{ID: idEKS, Tags: name("eks-node", ec2.Tag{Key: "eks:cluster-name", Value: "prod"}), Options: opts(func(o *ec2.Options) { o.HopLimit = 1 })},
		{ID: idLegacy, Tags: name("legacy"), Options: opts(func(o *ec2.Options) { o.HTTPTokens = ec2.Optional })},
		{ID: idDoomed, Tags: name("doomed"), Options: opts(func(o *ec2.Options) { o.HTTPEndpoint = ec2.Disabled })},
		{ID: idECS, Region: "eu-central-1", Tags: name("ecs-host", ec2.Tag{Key: "AmazonECSManaged", Value: ""}), Options: opts(func(o *ec2.Options) { o.HopLimit = 1 })},
		{ID: idOther, Region: "eu-central-1", Account: otherAcct, Tags: name("other"), Options: opts(func(o *ec2.Options) { o.HTTPEndpoint = ec2.Disabled })},
	} {
		sim.AddInstance(in)
	}
	sim.AddRole(ec2.RoleARN(ec2.DefaultAccount))
	sim.AddRole(ec2.RoleARN(otherAcct))
	b := &fleetBed{t: t, sim: sim, dir: t.TempDir()}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(b.serve)}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	b.url = "http://" + l.Addr().String()
	b.env = append(withoutAWS(os.Environ()), "AWS_ENDPOINT_URL_EC2="+b.url, "AWS_ENDPOINT_URL_STS="+b.url,
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=")
	// The default fleet policy, as a file of the test's own.
	if err := os.WriteFile(filepath.Join(b.dir, "fleet.hcl"), imdsmend.DefaultFleetPolicy, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// withoutAWS drops the host's AWS settings: the test's own must be the only ones.
func withoutAWS(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "AWS_") })
}

// serve passes requests to the simulator; the doomed instance is terminated when the first
// change names it, after the listing it was in.
func (b *fleetBed) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	form, _ := url.ParseQuery(string(body))
	b.mu.Lock()
	if b.doom != "" && form.Get("Action") == "ModifyInstanceMetadataOptions" && form.Get("InstanceId") == b.doom {
		b.sim.RemoveInstance(b.doom)
		b.doom = ""
	}
	b.mu.Unlock()
	b.sim.ServeHTTP(w, r)
}

// fleet runs imdsmend fleet ARGS with the bed's policy and state, and decodes its JSON report.
func (b *fleetBed) fleet(ctx context.Context, args ...string) (rep fleet.Report, code int, stderr string) {
	b.t.Helper()
	full := append([]string{"fleet"}, args...)
	full = append(full, "--format", "json", "--policy", filepath.Join(b.dir, "fleet.hcl"), "--state-dir", filepath.Join(b.dir, "state"))
	cmd := exec.CommandContext(ctx, bins.Imdsmend, full...)
	cmd.Env = b.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		b.t.Fatalf("imdsmend %s: %v", strings.Join(full, " "), err)
	}
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
		b.t.Fatalf("imdsmend %s: exit %d, not a JSON report: %v\n%s\n%s", strings.Join(full, " "), code, jerr, out.String(), errb.String())
	}
	return rep, code, errb.String()
}

type fleetFinding struct{ Account, Region, Instance, Name, Rule string }

func fleetFindings(r fleet.Report) []fleetFinding {
	var out []fleetFinding
	for _, f := range r.Findings {
		out = append(out, fleetFinding{f.Account, f.Region, f.InstanceID, f.Name, f.Rule})
	}
	slices.SortFunc(out, func(a, b fleetFinding) int { return strings.Compare(a.Instance+a.Rule, b.Instance+b.Rule) })
	return out
}

func fleetStatuses(r fleet.Report) map[string]string {
	out := map[string]string{}
	for _, c := range r.Changes {
		out[c.InstanceID] = string(c.Status)
	}
	return out
}

func failedScopes(r fleet.Report) []string {
	var out []string
	for _, s := range r.Scopes {
		if s.Error != "" {
			out = append(out, s.Account+"/"+s.Region)
		}
	}
	slices.Sort(out)
	return out
}

// TestFleet: audit, plan, apply and undo across two accounts and two regions of the
// simulator, with a region that does not answer, a role that cannot be assumed and an
// instance terminated between its listing and its change; the AWS CLI sees the changes.
func TestFleet(t *testing.T) {
	ctx := testContext(t)
	b := newFleetBed(t)
	scope := []string{"--regions", "us-east-1,eu-central-1,eu-west-1,xx-nowhere-1", "--role-arn", ec2.RoleARN(ec2.DefaultAccount), "--role-arn", ec2.RoleARN(otherAcct), "--role-arn", badRole}
	const acct = ec2.DefaultAccount

	audit, code, _ := b.fleet(ctx, append([]string{"audit", "--metrics-file", filepath.Join(b.dir, "fleet.prom")}, scope...)...)
	want := []fleetFinding{
		{acct, "us-east-1", idDisabled, "batch", "endpoint_disabled"},
		{acct, "us-east-1", idEKS, "eks-node", "hop_limit_too_low"},
		{acct, "us-east-1", idLegacy, "legacy", "http_tokens_optional"},
		{acct, "us-east-1", idDoomed, "doomed", "endpoint_disabled"},
		{acct, "eu-central-1", idECS, "ecs-host", "hop_limit_too_low"},
		{otherAcct, "eu-central-1", idOther, "other", "endpoint_disabled"},
	}
	slices.SortFunc(want, func(a, b fleetFinding) int { return strings.Compare(a.Instance+a.Rule, b.Instance+b.Rule) })
	if diff := cmp.Diff(want, fleetFindings(audit)); diff != "" {
		t.Errorf("audit findings (-want +got):\n%s", diff)
	}
	// The unreachable region and the one the accounts lack (AuthFailure) in each account,
	// and the role that cannot be assumed, are reported; the rest was read.
	wantFailed := []string{acct + "/eu-west-1", acct + "/xx-nowhere-1", otherAcct + "/eu-west-1", otherAcct + "/xx-nowhere-1", "999999999999/"}
	slices.Sort(wantFailed)
	if diff := cmp.Diff(wantFailed, failedScopes(audit)); diff != "" || code != report.ExitFindings || audit.Schema != fleet.SchemaV1 {
		t.Errorf("audit: exit %d, schema %q, failed scopes (-want +got):\n%s", code, audit.Schema, diff)
	}
	if prom, err := os.ReadFile(filepath.Join(b.dir, "fleet.prom")); err != nil || !strings.Contains(string(prom),
		`imdsmend_fleet_findings{rule="endpoint_disabled",severity="critical",account="`+otherAcct+`",region="eu-central-1"} 1`) {
		t.Errorf("metrics file: %v\n%s", err, prom)
	}

	plan, code, _ := b.fleet(ctx, append([]string{"plan"}, scope...)...)
	planned := map[string]string{idDisabled: "planned", idEKS: "planned", idDoomed: "planned", idECS: "planned", idOther: "planned"}
	if diff := cmp.Diff(planned, fleetStatuses(plan)); diff != "" || code != report.ExitFindings {
		t.Errorf("plan: exit %d, changes (-want +got):\n%s", code, diff)
	}
	if n := b.sim.Stats().ByAction["ModifyInstanceMetadataOptions"]; n != 0 {
		t.Errorf("audit and plan called ModifyInstanceMetadataOptions %d times", n)
	}

	// The doomed instance is terminated between its listing and its change.
	b.mu.Lock()
	b.doom = idDoomed
	b.mu.Unlock()
	apply, code, stderr := b.fleet(ctx, append([]string{"apply"}, scope...)...)
	applied := map[string]string{idDisabled: "applied", idEKS: "applied", idDoomed: "skipped", idECS: "applied", idOther: "applied"}
	if diff := cmp.Diff(applied, fleetStatuses(apply)); diff != "" {
		t.Errorf("apply changes (-want +got):\n%s", diff)
	}
	// Only the info finding is left, but two scopes were not read: not healthy.
	if got := fleetFindings(apply); len(got) != 1 || got[0].Rule != "http_tokens_optional" || code != report.ExitFindings {
		t.Errorf("apply: exit %d, findings %v; want 2 and only http_tokens_optional", code, got)
	}
	if !strings.Contains(stderr, `"event":"change"`) {
		t.Errorf("apply's progress on stderr (not a terminal) is not JSON lines:\n%s", stderr)
	}
	for id, check := range map[string]func(ec2.Options) bool{
		idDisabled: func(o ec2.Options) bool { return o.HTTPEndpoint == ec2.Enabled },
		idEKS:      func(o ec2.Options) bool { return o.HopLimit == 2 },
		idOther:    func(o ec2.Options) bool { return o.HTTPEndpoint == ec2.Enabled },
	} {
		if o, ok := b.sim.EffectiveOptions(id); !ok || !check(o) {
			t.Errorf("%s enforces %+v after apply", id, o)
		}
	}
	st := b.sim.Stats()
	if st.Errors["DryRunOperation"] != 4 || st.Modified != 4 || st.Throttled != 0 {
		t.Errorf("simulator saw %d dry runs, %d changes, %d throttled; want 4, 4, 0", st.Errors["DryRunOperation"], st.Modified, st.Throttled)
	}
	// The fleet as it is now, without the unreadable scopes, is healthy.
	if again, code, _ := b.fleet(ctx, "apply", "--regions", "us-east-1,eu-central-1", "--role-arn", ec2.RoleARN(otherAcct)); code != report.ExitHealthy || len(again.Changes) != 0 {
		t.Errorf("second apply: exit %d, changes %v; want 0 and none", code, fleetStatuses(again))
	}

	// The AWS CLI sees the change.
	if _, err := os.Stat(awsCLI); err == nil {
		cmd := exec.CommandContext(ctx, awsCLI, "--endpoint-url", b.url, "--output", "text", "ec2", "describe-instances",
			"--instance-ids", idDisabled, "--query", "Reservations[].Instances[].MetadataOptions.HttpEndpoint")
		cmd.Env = b.env
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "enabled" {
			t.Errorf("aws ec2 describe-instances after apply: %v: %q; want enabled", err, out)
		}
	} else {
		t.Errorf("%s: %v (install the Debian package awscli: .ci/deps)", awsCLI, err)
	}

	undo, code, _ := b.fleet(ctx, "undo", "--last")
	reverted := map[string]string{idDisabled: "reverted", idEKS: "reverted", idECS: "reverted", idOther: "reverted"}
	if diff := cmp.Diff(reverted, fleetStatuses(undo)); diff != "" || code != report.ExitHealthy {
		t.Errorf("undo: exit %d, changes (-want +got):\n%s", code, diff)
	}
	if o, _ := b.sim.EffectiveOptions(idDisabled); o.HTTPEndpoint != ec2.Disabled {
		t.Errorf("%s endpoint %s after undo; want disabled again", idDisabled, o.HTTPEndpoint)
	}
	if o, _ := b.sim.EffectiveOptions(idEKS); o.HopLimit != 1 {
		t.Errorf("%s hop limit %d after undo; want 1 again", idEKS, o.HopLimit)
	}
	if again, code, _ := b.fleet(ctx, "undo", "--last"); code != report.ExitHealthy || len(again.Changes) != 0 {
		t.Errorf("second undo: exit %d, %d changes; want 0 and nothing to undo", code, len(again.Changes))
	}

	// A malformed page costs its account and region only.
	cfg := b.sim.Config()
	b.sim.SetConfig(ec2.Config{Fault: ec2.FaultMalformed, Actions: []string{"DescribeInstances"}, Times: 1, ApplyAfter: cfg.ApplyAfter, Throttle: cfg.Throttle})
	defer b.sim.SetConfig(cfg)
	bad, code, _ := b.fleet(ctx, "audit", "--regions", "us-east-1,eu-central-1")
	if failed := failedScopes(bad); len(failed) != 1 || code != report.ExitFindings || bad.Totals.Instances == 0 {
		t.Errorf("audit with one malformed page: exit %d, failed scopes %v, %d instances; want 2, one scope, the other read", code, failed, bad.Totals.Instances)
	}

	// Nothing readable at all is an error.
	if _, code, _ := b.fleet(ctx, "audit", "--regions", "us-east-1", "--role-arn", badRole); code != report.ExitError {
		t.Errorf("audit of an account whose role cannot be assumed: exit %d, want 1", code)
	}
}
