package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/remediate"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/rules"
)

func defaultPolicy(t testing.TB, dropIn string) *rules.Policy {
	t.Helper()
	sources := []rules.Source{{Name: "fleet.hcl", Data: imdsmend.DefaultFleetPolicy}}
	if dropIn != "" {
		sources = append(sources, rules.Source{Name: "fleet.d/10.hcl", Data: []byte(dropIn)})
	}
	p, diags := rules.ParseSchema(sources, Kinds, Schema())
	if diags.HasErrors() {
		t.Fatalf("policy: %s", diags.Error())
	}
	return p
}

// testFleet is two accounts: the caller's own (111) in eu-central-1 and us-east-1, and
// one reached through a role (222) in eu-west-1.
func testFleet() *fakeCloud {
	return &fakeCloud{accounts: map[string]*fakeAccount{
		"": {id: "111111111111", regions: map[string]*fakeRegion{
			"eu-central-1": {
				defaults: Defaults{HTTPTokens: "required", ManagedBy: "account"},
				images:   map[string]string{"ami-1": "v2.0"},
				instances: []Instance{
					inst("i-ok", "web", nil),
					inst("i-disabled", "batch", func(i *Instance) { i.Options.HTTPEndpoint = "disabled" }),
					inst("i-eks", "node", func(i *Instance) {
						i.Tags["eks:cluster-name"] = "prod"
						i.Options.HopLimit = 1
					}),
					inst("i-v1", "legacy", func(i *Instance) { i.Options.HTTPTokens = "optional" }),
				},
			},
			"us-east-1": {instances: []Instance{
				inst("i-v6", "ipv6", func(i *Instance) { i.IPv6 = true }),
				inst("i-stopped", "", func(i *Instance) { i.State = "stopped"; i.Options.State = "pending" }),
			}},
		}},
		"arn:aws:iam::222222222222:role/audit": {id: "222222222222", regions: map[string]*fakeRegion{
			"eu-west-1": {instances: []Instance{inst("i-other", "other", func(i *Instance) { i.Options.HTTPEndpoint = "disabled" })}},
		}},
		"arn:aws:iam::333333333333:role/audit": {err: &APIError{Code: "AccessDenied", Message: "User is not authorized to perform: sts:AssumeRole"}},
	}}
}

func newTestFleet(t testing.TB, cloud Cloud, p *rules.Policy, regions []string, roles ...string) *Fleet {
	return New(Config{Cloud: cloud, Policy: p, Regions: regions, RoleARNs: roles,
		Ledger: remediate.NewLedger(filepath.Join(t.TempDir(), "fleet-ledger.jsonl")),

		Rates: Rates{Mutating: Bucket{Rate: 1e6, Burst: 1000}, Read: Bucket{Rate: 1e6, Burst: 1000}}})
}

type finding struct{ Account, Region, Instance, Rule string }

func keysOf(r *Report) []finding {
	var out []finding
	for _, f := range r.Findings {
		out = append(out, finding{f.Account, f.Region, f.InstanceID, f.Rule})
	}
	return out
}

func TestAudit(t *testing.T) {
	cloud := testFleet()
	f := newTestFleet(t, cloud, defaultPolicy(t, ""), []string{"all"}, "", "arn:aws:iam::222222222222:role/audit", "arn:aws:iam::333333333333:role/audit")
	rep := f.Audit(context.Background())
	want := []finding{
		{"111111111111", "eu-central-1", "i-disabled", "endpoint_disabled"},
		{"111111111111", "eu-central-1", "i-eks", "hop_limit_too_low"},
		{"111111111111", "eu-central-1", "i-v1", "http_tokens_optional"},
		{"111111111111", "us-east-1", "i-v6", "ipv6_endpoint_disabled"},
		{"111111111111", "us-east-1", "i-stopped", "options_pending"},
		{"222222222222", "eu-west-1", "i-other", "endpoint_disabled"},
	}
	if diff := cmp.Diff(want, keysOf(rep)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if rep.Totals.Instances != 7 || rep.Totals.FailedScopes != 1 || rep.Healthy || rep.ExitCode() != report.ExitFindings {
		t.Errorf("totals %+v healthy %v exit %d; want 7 instances, 1 failed scope, unhealthy, exit 2", rep.Totals, rep.Healthy, rep.ExitCode())
	}
	failed := rep.Scopes[slices.IndexFunc(rep.Scopes, func(s Scope) bool { return s.Error != "" })]
	if failed.Account != "333333333333" || !strings.Contains(failed.Error, "sts:AssumeRole") {
		t.Errorf("first scope %+v; want account 333333333333 with the AssumeRole error", failed)
	}
	// The AMI's ImdsSupport and the account default explain HttpTokens optional.
	for _, fd := range rep.Findings {
		if fd.Rule == "http_tokens_optional" && (!strings.Contains(fd.Summary, "AMI asks for v2.0") || !strings.Contains(fd.Summary, "account default requires tokens")) {
			t.Errorf("summary %q does not explain the AMI and the account default", fd.Summary)
		}
		if fd.Name == "" && fd.InstanceID != "i-stopped" {
			t.Errorf("finding %+v has no Name", fd)
		}
	}
}

func TestAuditScopeErrors(t *testing.T) {
	cloud := testFleet()
	cloud.accounts[""].regions["eu-central-1"].err = errUnreachable
	f := newTestFleet(t, cloud, defaultPolicy(t, ""), []string{"eu-central-1", "us-east-1", "ap-nowhere-1"})
	rep := f.Audit(context.Background())
	var failed []string
	for _, s := range rep.Scopes {
		if s.Error != "" {
			failed = append(failed, s.Region)
		}
	}
	if !slices.Equal(failed, []string{"ap-nowhere-1", "eu-central-1"}) || rep.ExitCode() != report.ExitFindings {
		t.Errorf("failed scopes %v, exit %d; want ap-nowhere-1 and eu-central-1, exit 2", failed, rep.ExitCode())
	}
	if len(rep.Findings) != 2 {
		t.Errorf("findings %v; want the two of us-east-1", keysOf(rep))
	}
	// Nothing read at all is an error.
	cloud.accounts[""].regions["us-east-1"].err = errUnreachable
	if rep := newTestFleet(t, cloud, defaultPolicy(t, ""), []string{"eu-central-1", "us-east-1"}).Audit(context.Background()); rep.ExitCode() != report.ExitError {
		t.Errorf("exit %d with every scope failed; want 1", rep.ExitCode())
	}
}

func TestPagination(t *testing.T) {
	for _, n := range []int{0, 999, 1000, 1001, 2500} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			r := &fakeRegion{}
			for i := range n {
				r.instances = append(r.instances, inst(fmt.Sprintf("i-%05d", i), "", nil))
			}
			// A terminated instance is filtered out on the server.
			r.instances = append(r.instances, inst("i-gone", "", func(i *Instance) { i.State = "terminated" }))
			cloud := &fakeCloud{accounts: map[string]*fakeAccount{"": {id: "1", regions: map[string]*fakeRegion{"r": r}}}}
			rep := newTestFleet(t, cloud, defaultPolicy(t, ""), []string{"r"}).Audit(context.Background())
			wantPages := max(1, (n+999)/1000)
			if rep.Totals.Instances != n || rep.Totals.Pages != wantPages {
				t.Errorf("%d instances in %d pages; want %d in %d", rep.Totals.Instances, rep.Totals.Pages, n, wantPages)
			}
		})
	}
}

func TestPlanApplyUndo(t *testing.T) {
	cloud := testFleet()
	p := defaultPolicy(t, "")
	regions := []string{"eu-central-1", "us-east-1"}
	f := newTestFleet(t, cloud, p, regions)
	plan := f.Plan(context.Background())
	type change struct {
		Instance string
		Set      Set
		Status   types.Status
	}
	changesOf := func(r *Report) []change {
		var out []change
		for _, c := range r.Changes {
			out = append(out, change{c.InstanceID, c.Set, c.Status})
		}
		return out
	}
	wantPlan := []change{
		{"i-disabled", Set{HTTPEndpoint: "enabled"}, types.StatusPlanned},
		{"i-eks", Set{HopLimit: 2}, types.StatusPlanned},
		{"i-v6", Set{HTTPIPv6: "enabled"}, types.StatusPlanned},
	}
	if diff := cmp.Diff(wantPlan, changesOf(plan)); diff != "" {
		t.Fatalf("plan (-want +got):\n%s", diff)
	}
	if plan.ExitCode() != report.ExitFindings || cloud.accounts[""].regions["eu-central-1"].dryRuns != 0 {
		t.Errorf("plan exit %d, dry runs %d; want 2 and none", plan.ExitCode(), cloud.accounts[""].regions["eu-central-1"].dryRuns)
	}

	f2 := newTestFleet(t, cloud, p, regions)
	f2.opts.Ledger = f.opts.Ledger
	apply := f2.Apply(context.Background())
	for i := range wantPlan {
		wantPlan[i].Status = types.StatusApplied
	}
	if diff := cmp.Diff(wantPlan, changesOf(apply)); diff != "" {
		t.Fatalf("apply (-want +got):\n%s", diff)
	}
	for i, c := range plan.Changes {
		if apply.Changes[i].ID != c.ID {
			t.Errorf("change %d: ID %s in apply, %s in plan", i, apply.Changes[i].ID, c.ID)
		}
	}
	// What is left is the info finding and the pending stopped instance.
	wantLeft := []finding{
		{"111111111111", "eu-central-1", "i-v1", "http_tokens_optional"},
		{"111111111111", "us-east-1", "i-stopped", "options_pending"},
	}
	if diff := cmp.Diff(wantLeft, keysOf(apply)); diff != "" {
		t.Errorf("findings after apply (-want +got):\n%s", diff)
	}
	ec := cloud.accounts[""].regions["eu-central-1"]
	if got := ec.options("i-eks"); got.HopLimit != 2 || got.State != "applied" {
		t.Errorf("i-eks options %+v after apply; want hop limit 2, applied", got)
	}
	if ec.dryRuns != 2 || ec.modifies != 2 {
		t.Errorf("eu-central-1: %d dry runs, %d calls; want 2 and 2", ec.dryRuns, ec.modifies)
	}
	entries, err := f.opts.Ledger.Read()
	if err != nil || len(entries) != 6 {
		t.Fatalf("ledger: %d entries, %v; want an intent and a result per change", len(entries), err)
	}
	if entries[0].Phase != remediate.PhaseIntent || entries[0].RunID != apply.RunID {
		t.Errorf("first ledger entry %+v; want the apply's intent", entries[0])
	}

	// Someone else changes i-v6's IPv6 back meanwhile: undo leaves it alone.
	cloud.accounts[""].regions["us-east-1"].instances[0].Options.HTTPIPv6 = "disabled"
	f3 := newTestFleet(t, cloud, p, nil)
	f3.opts.Ledger = f.opts.Ledger
	undo, err := f3.Undo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]types.Status{}
	for _, c := range undo.Changes {
		got[c.InstanceID] = c.Status
	}
	wantUndo := map[string]types.Status{"i-disabled": types.StatusReverted, "i-eks": types.StatusReverted, "i-v6": types.StatusUnchanged}
	if diff := cmp.Diff(wantUndo, got); diff != "" || undo.ExitCode() != report.ExitHealthy {
		t.Errorf("undo (-want +got), exit %d:\n%s", undo.ExitCode(), diff)
	}
	if o := ec.options("i-disabled"); o.HTTPEndpoint != "disabled" {
		t.Errorf("i-disabled endpoint %q after undo; want disabled again", o.HTTPEndpoint)
	}
	// A second undo finds nothing left.
	again, err := f3.Undo(context.Background())
	if err != nil || len(again.Changes) != 0 || again.ExitCode() != report.ExitHealthy {
		t.Errorf("second undo: %+v, %v; want nothing to undo", again.Changes, err)
	}
}

func TestApplyVanished(t *testing.T) {
	cloud := testFleet()
	ec := cloud.accounts[""].regions["eu-central-1"]
	// i-disabled is terminated between the listing and its change.
	ec.beforeModify = func(r *fakeRegion, id string, dryRun bool) error {
		if id == "i-disabled" {
			r.remove(id)
		}
		return nil
	}
	rep := newTestFleet(t, cloud, defaultPolicy(t, ""), []string{"eu-central-1"}).Apply(context.Background())
	var st types.Status
	for _, c := range rep.Changes {
		if c.InstanceID == "i-disabled" {
			st = c.Status
		}
	}
	if st != types.StatusSkipped {
		t.Errorf("vanished instance's change is %q; want skipped", st)
	}
	for _, f := range rep.Findings {
		if f.InstanceID == "i-disabled" {
			t.Errorf("finding %+v of a vanished instance stays open", f)
		}
	}
	// Only the info finding remains: the fleet is healthy.
	if rep.ExitCode() != report.ExitHealthy {
		t.Errorf("exit %d; want 0: %s", rep.ExitCode(), summary(rep))
	}
}

func manyDisabled(n int) *fakeCloud {
	r := &fakeRegion{}
	for i := range n {
		r.instances = append(r.instances, inst(fmt.Sprintf("i-%04d", i), "", func(i *Instance) { i.Options.HTTPEndpoint = "disabled" }))
	}
	return &fakeCloud{accounts: map[string]*fakeAccount{"": {id: "1", regions: map[string]*fakeRegion{"r": r}}}}
}

func TestApplyLimits(t *testing.T) {
	t.Run("max_changes", func(t *testing.T) {
		cloud := manyDisabled(30)
		p := defaultPolicy(t, `settings {
  fleet {
    max_changes = 10
  }
}`)
		rep := newTestFleet(t, cloud, p, []string{"r"}).Apply(context.Background())
		if rep.Totals.Changes["applied"] != 10 || rep.Totals.Changes["skipped"] != 20 || rep.ExitCode() != report.ExitFindings {
			t.Errorf("changes %v exit %d; want 10 applied, 20 skipped, exit 2", rep.Totals.Changes, rep.ExitCode())
		}
	})
	t.Run("max_error_rate", func(t *testing.T) {
		cloud := manyDisabled(100)
		cloud.accounts[""].regions["r"].beforeModify = func(_ *fakeRegion, id string, _ bool) error {
			return &APIError{Code: CodeUnauthorized, Message: "You are not authorized to perform this operation."}
		}
		p := defaultPolicy(t, `settings {
  fleet {
    max_changes    = 1000
    max_error_rate = 0.1
  }
}`)
		rep := newTestFleet(t, cloud, p, []string{"r"}).Apply(context.Background())
		failed, skipped := rep.Totals.Changes["failed"], rep.Totals.Changes["skipped"]
		if failed < minErrorSample || failed > minErrorSample+workersPerScope || failed+skipped != 100 || !strings.Contains(rep.Stopped, "max_error_rate") {
			t.Errorf("changes %v, stopped %q; want about %d failed, the rest skipped, stopped at max_error_rate", rep.Totals.Changes, rep.Stopped, minErrorSample)
		}
		if !strings.Contains(rep.Changes[0].Error, CodeUnauthorized) {
			t.Errorf("error %q; want the API's code", rep.Changes[0].Error)
		}
	})
	t.Run("report mode", func(t *testing.T) {
		cloud := manyDisabled(3)
		rep := newTestFleet(t, cloud, defaultPolicy(t, `settings {
  mode = "report"
}`), []string{"r"}).Apply(context.Background())
		if rep.Totals.Changes["skipped"] != 3 || cloud.accounts[""].regions["r"].dryRuns != 0 {
			t.Errorf("changes %v; want 3 skipped, no call", rep.Totals.Changes)
		}
	})
}

func TestRender(t *testing.T) {
	rep := newTestFleet(t, testFleet(), defaultPolicy(t, ""), []string{"all"}, "", "arn:aws:iam::333333333333:role/audit").Plan(context.Background())
	var js bytes.Buffer
	if err := WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(js.Bytes(), &generic); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"schema", "command", "run_id", "healthy", "scopes", "findings", "changes", "unknown", "totals", "duration_ms"} {
		if _, ok := generic[key]; !ok {
			t.Errorf("JSON report lacks %q", key)
		}
	}
	if generic["schema"] != SchemaV1 {
		t.Errorf("schema %v", generic["schema"])
	}
	var text bytes.Buffer
	if err := WriteText(&text, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"i-disabled", "batch", "endpoint_disabled", "--http-endpoint enabled", "not read: 333333333333", "plan: 6 instances"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	var csvOut bytes.Buffer
	if err := WriteCSV(&csvOut, rep); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(csvOut.String()), "\n")
	if lines[0] != strings.Join(csvHeader, ",") || len(lines) != 1+len(rep.Findings)+len(rep.Changes)+1 {
		t.Errorf("csv: %d lines, header %q", len(lines), lines[0])
	}
	m := string(Metrics(rep, time.Unix(1e9, 0)))
	for _, want := range []string{
		`imdsmend_fleet_findings{rule="endpoint_disabled",severity="critical",account="111111111111",region="eu-central-1"} 1`,
		`imdsmend_fleet_scope_up{account="333333333333",region=""} 0`,
		`imdsmend_fleet_instances{account="111111111111",region="us-east-1"} 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, m)
		}
	}
}

func TestSet(t *testing.T) {
	before := Options{HTTPEndpoint: "disabled", HTTPTokens: "optional", HopLimit: 1, HTTPIPv6: "disabled", MetadataTags: "disabled", State: "applied"}
	tests := []struct {
		name           string
		set            Set
		minus, inverse Set
		args           string
	}{
		{"nothing", Set{}, Set{}, Set{}, ""},
		{"endpoint", Set{HTTPEndpoint: "enabled"}, Set{HTTPEndpoint: "enabled"}, Set{HTTPEndpoint: "disabled"}, "--http-endpoint enabled"},
		{"already so", Set{HopLimit: 1, HTTPTokens: "optional"}, Set{}, Set{HopLimit: 1, HTTPTokens: "optional"}, "--http-tokens optional --http-put-response-hop-limit 1"},
		{"mixed", Set{HopLimit: 2, HTTPIPv6: "disabled"}, Set{HopLimit: 2}, Set{HopLimit: 1, HTTPIPv6: "disabled"}, "--http-put-response-hop-limit 2 --http-protocol-ipv6 disabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.set.Minus(before); got != tt.minus {
				t.Errorf("Minus = %+v, want %+v", got, tt.minus)
			}
			if got := tt.set.Inverse(before); got != tt.inverse {
				t.Errorf("Inverse = %+v, want %+v", got, tt.inverse)
			}
			if got := tt.set.Args(); got != tt.args {
				t.Errorf("Args = %q, want %q", got, tt.args)
			}
		})
	}
}

func TestParseFilter(t *testing.T) {
	tests := []struct {
		in      string
		want    Filter
		wantErr bool
	}{
		{"tag:Team=web", Filter{Name: "tag:Team", Values: []string{"web"}}, false},
		{"tag:List=a,b", Filter{Name: "tag:List", Values: []string{"a,b"}}, false},
		{"instance-type=t3.micro,t3.small", Filter{Name: "instance-type", Values: []string{"t3.micro", "t3.small"}}, false},
		{"tag:Team", Filter{}, true},
		{"=x", Filter{}, true},
	}
	for _, tt := range tests {
		got, err := ParseFilter(tt.in)
		if (err != nil) != tt.wantErr || !tt.wantErr && !cmp.Equal(got, tt.want) {
			t.Errorf("ParseFilter(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

func TestContainerTag(t *testing.T) {
	tests := []struct {
		tags map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"Name": "x"}, ""},
		{map[string]string{"eks:cluster-name": "prod"}, "eks:cluster-name"},
		{map[string]string{"kubernetes.io/cluster/prod": "owned"}, "kubernetes.io/cluster/prod"},
		{map[string]string{"AmazonECSManaged": ""}, "AmazonECSManaged"},
	}
	for _, tt := range tests {
		if got := containerTag(tt.tags); got != tt.want {
			t.Errorf("containerTag(%v) = %q, want %q", tt.tags, got, tt.want)
		}
	}
}

// TestPacedBuckets: every call takes a token of its kind's bucket for the account and
// region — two mutating ones per change (the dry run and the call) — and is counted.
func TestPacedBuckets(t *testing.T) {
	r := &fakeRegion{instances: []Instance{inst("i-1", "", func(i *Instance) { i.Options.HTTPEndpoint = "disabled" })}}
	stats := &Stats{}
	// Nearly no refill: what the calls took stays taken.
	p := newPaced(r, Rates{Mutating: Bucket{Rate: 1e-9, Burst: 3}, Read: Bucket{Rate: 1e-9, Burst: 5}}, stats)
	ctx := context.Background()
	if _, err := p.DescribeInstances(ctx, DescribeInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.MetadataDefaults(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Modify(ctx, "i-1", Set{HTTPEndpoint: "enabled"}); err != nil {
		t.Fatal(err)
	}
	mut, read := p.mutate.Tokens(), p.read.Tokens()
	if mut < 0.99 || mut > 1.01 || read < 2.99 || read > 3.01 || stats.Calls.Load() != 4 {
		t.Errorf("tokens left: mutating %.2f, read %.2f; calls %d; want 1, 3 and 4", mut, read, stats.Calls.Load())
	}
	// An empty bucket makes the next change wait; a cancelled context ends the wait.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.Modify(cctx, "i-1", Set{HopLimit: 3}); err == nil {
		t.Error("a change went through an empty bucket")
	}
}

// TestOneChangePerInstance: the rules that fire on an instance make one change together,
// the highest hop limit winning.
func TestOneChangePerInstance(t *testing.T) {
	p := defaultPolicy(t, `rule "deep_containers" {
  when     = lookup(facts.instance.tags, "nesting", "") == "deep"
  severity = "warning"
  summary  = "nested containers need hop limit 3"
  remediate "metadata_options" {
    hop_limit = 3
  }
}`)
	r := &fakeRegion{instances: []Instance{inst("i-1", "", func(i *Instance) {
		i.Tags["eks:cluster-name"] = "x"
		i.Tags["nesting"] = "deep"
		i.IPv6 = true
		i.Options.HTTPEndpoint, i.Options.HopLimit = "disabled", 1
	})}}
	cloud := &fakeCloud{accounts: map[string]*fakeAccount{"": {id: "1", regions: map[string]*fakeRegion{"r": r}}}}
	rep := newTestFleet(t, cloud, p, []string{"r"}).Plan(context.Background())
	want := Set{HTTPEndpoint: "enabled", HopLimit: 3, HTTPIPv6: "enabled"}
	if len(rep.Changes) != 1 || rep.Changes[0].Set != want || len(rep.Changes[0].Rules) != 4 {
		t.Errorf("changes %+v; want one setting %+v from four rules", rep.Changes, want)
	}
}

// TestLastApplied: undo --last takes the changes of the most recent run that made any —
// applied ones, and intents whose result a crash kept from being written — less those an
// undo settled since.
func TestLastApplied(t *testing.T) {
	entry := func(run, phase, id string, st types.Status) remediate.Entry {
		data, _ := json.Marshal(record{Account: "1", Region: "r", InstanceID: "i-" + id, Set: Set{HopLimit: 2}})
		return remediate.Entry{RunID: run, Phase: phase, Change: remediate.Change{ID: id, Kind: KindMetadataOptions, Rule: "hop_limit_too_low",
			Status: st, Data: data, Before: []byte(`{"hop_limit":1}`)}}
	}
	const (
		intent, result, undoResult = remediate.PhaseIntent, remediate.PhaseResult, remediate.PhaseUndoResult
	)
	tests := []struct {
		name    string
		entries []remediate.Entry
		want    []string
	}{
		{"empty ledger", nil, nil},
		{"the last run", []remediate.Entry{
			entry("a", intent, "x", types.StatusPlanned), entry("a", result, "x", types.StatusApplied),
			entry("b", intent, "y", types.StatusPlanned), entry("b", result, "y", types.StatusApplied),
			entry("b", intent, "z", types.StatusPlanned), entry("b", result, "z", types.StatusFailed),
		}, []string{"y"}},
		{"an intent without its result", []remediate.Entry{
			entry("a", intent, "x", types.StatusPlanned), entry("a", result, "x", types.StatusApplied),
			entry("b", intent, "y", types.StatusPlanned),
		}, []string{"y"}},
		{"settled by an undo", []remediate.Entry{
			entry("a", intent, "x", types.StatusPlanned), entry("a", result, "x", types.StatusApplied),
			entry("a", intent, "y", types.StatusPlanned), entry("a", result, "y", types.StatusApplied),
			entry("u", undoResult, "x", types.StatusReverted),
		}, []string{"y"}},
		{"a failed undo settles nothing", []remediate.Entry{
			entry("a", intent, "x", types.StatusPlanned), entry("a", result, "x", types.StatusApplied),
			entry("u", undoResult, "x", types.StatusFailed),
		}, []string{"x"}},
		{"the same change applied again after an undo", []remediate.Entry{
			entry("a", intent, "x", types.StatusPlanned), entry("a", result, "x", types.StatusApplied),
			entry("u", undoResult, "x", types.StatusReverted),
			entry("b", intent, "x", types.StatusPlanned), entry("b", result, "x", types.StatusApplied),
		}, []string{"x"}},
		{"a run that changed nothing is not the last", []remediate.Entry{
			entry("a", intent, "x", types.StatusPlanned), entry("a", result, "x", types.StatusApplied),
			entry("b", result, "y", types.StatusSkipped),
		}, []string{"x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes, err := lastApplied(tt.entries)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range changes {
				got = append(got, c.ID)
				if c.Before.HopLimit != 1 || c.Set.HopLimit != 2 || c.InstanceID != "i-"+c.ID {
					t.Errorf("change %+v: the record was not read back", c)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("changes %v, want %v", got, tt.want)
			}
		})
	}
}

func TestProgress(t *testing.T) {
	c := Change{ID: "metadata_options-0123456789", Account: "1", Region: "r", InstanceID: "i-1", Status: types.StatusApplied}
	var lines bytes.Buffer
	p := NewProgress(&lines, false)
	p.Start(CommandApply, 2)
	p.Step(c, 1, 2)
	p.End()
	want := `{"event":"start","command":"apply","done":0,"total":2}
{"event":"change","id":"metadata_options-0123456789","account":"1","region":"r","instance_id":"i-1","status":"applied","done":1,"total":2}
`
	if lines.String() != want {
		t.Errorf("JSON lines:\n%s\nwant:\n%s", lines.String(), want)
	}
	var bar bytes.Buffer
	p = NewProgress(&bar, true)
	p.Start(CommandApply, 2)
	p.Step(c, 2, 2)
	p.End()
	if !strings.Contains(bar.String(), "\rapply [##############################] 2/2 applied 1") || !strings.HasSuffix(bar.String(), "\n") {
		t.Errorf("bar: %q", bar.String())
	}
}
