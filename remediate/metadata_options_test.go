package remediate

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/facts"
	ec2facts "github.com/imdsmend/imdsmend/facts/ec2"
	"github.com/imdsmend/imdsmend/facts/identity"
	"github.com/imdsmend/imdsmend/internal/ec2api"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/zclconf/go-cty/cty"
)

// fakeMetadataAPI is one instance's options behind the MetadataAPI seam.
type fakeMetadataAPI struct {
	opts      ec2api.MetadataOptions
	calls     []string
	modifyErr error
	// sentButNotApplied: Modify changes the options but reports KindNotApplied.
	sentButNotApplied bool
	cfg               ec2api.Config
}

func (f *fakeMetadataAPI) Describe(_ context.Context, id string) (*ec2api.Instance, error) {
	f.calls = append(f.calls, "describe")
	return &ec2api.Instance{ID: id, MetadataOptions: f.opts}, nil
}

func (f *fakeMetadataAPI) Modify(_ context.Context, id string, ch ec2api.Change) (*ec2api.Instance, error) {
	f.calls = append(f.calls, "modify "+describeChange(ch, nil))
	if f.modifyErr != nil {
		return nil, f.modifyErr
	}
	o := &f.opts
	for _, s := range []struct {
		dst *string
		v   string
	}{{&o.HTTPEndpoint, ch.HTTPEndpoint}, {&o.HTTPTokens, ch.HTTPTokens},
		{&o.HTTPProtocolIPv6, ch.HTTPProtocolIPv6}, {&o.InstanceMetadataTags, ch.InstanceMetadataTags}} {
		if s.v != "" {
			*s.dst = s.v
		}
	}
	if ch.HopLimit != 0 {
		o.HopLimit = ch.HopLimit
	}
	in := &ec2api.Instance{ID: id, MetadataOptions: f.opts}
	if f.sentButNotApplied {
		return in, &ec2api.Error{Kind: ec2api.KindNotApplied, Op: "DescribeInstances", Message: "still pending"}
	}
	return in, nil
}

func metadataArgs(kv map[string]cty.Value) cty.Value {
	all := map[string]cty.Value{}
	for _, k := range []string{"http_endpoint", "http_tokens", "http_protocol_ipv6", "instance_metadata_tags"} {
		all[k] = cty.NullVal(cty.String)
	}
	all["hop_limit"] = cty.NullVal(cty.Number)
	all["v1_callers"] = cty.NullVal(cty.List(cty.String))
	for k, v := range kv {
		all[k] = v
	}
	return cty.ObjectVal(all)
}

const testInstance = "i-0123456789abcdef0"

func metadataExecutor(t *testing.T, api *fakeMetadataAPI, f *facts.Facts) *Executor {
	t.Helper()
	reg, err := NewRegistry(MetadataOptions{New: func(_ context.Context, cfg ec2api.Config) (MetadataAPI, error) {
		api.cfg = cfg
		return api, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	env := testEnv(t.TempDir(), false)
	env.Facts = f
	return &Executor{Registry: reg, Env: env, Ledger: NewLedger(filepath.Join(t.TempDir(), "ledger.jsonl")), RunID: "run-1", Enforce: true}
}

func disabledFacts(withAPI bool) *facts.Facts {
	f := &facts.Facts{
		IMDS:     &types.IMDS{Class: types.ClassHTTP403, Stage: types.StageToken},
		Identity: &identity.Identity{InstanceID: testInstance, Region: "us-east-1"},
	}
	if withAPI {
		f.EC2 = &ec2facts.EC2{MetadataOptions: &ec2api.MetadataOptions{State: "applied", HTTPEndpoint: "disabled", HTTPTokens: "required", HopLimit: 2}}
	}
	return f
}

func TestMetadataOptions(t *testing.T) {
	enable := metadataArgs(map[string]cty.Value{"http_endpoint": cty.StringVal("enabled"), "hop_limit": cty.NumberIntVal(2)})
	for _, tc := range []struct {
		name      string
		facts     *facts.Facts
		args      cty.Value
		api       fakeMetadataAPI
		wantPlan  []string // "status detail|error"
		wantCalls []string
		wantOpts  ec2api.MetadataOptions
		undo      bool
		wantUndo  []string
	}{
		{name: "disabled endpoint: only what differs is set, undo sets it back",
			facts: disabledFacts(true), args: enable,
			api:       fakeMetadataAPI{opts: ec2api.MetadataOptions{HTTPEndpoint: "disabled", HTTPTokens: "required", HopLimit: 2}},
			wantPlan:  []string{"applied ModifyInstanceMetadataOptions applied: http_endpoint disabled → enabled"},
			wantCalls: []string{"describe", "modify http_endpoint = enabled"},
			wantOpts:  ec2api.MetadataOptions{HTTPEndpoint: "enabled", HTTPTokens: "required", HopLimit: 2},
			undo:      true, wantUndo: []string{"describe", "modify http_endpoint = disabled"}},
		{name: "facts without the API: the values are read before the call",
			facts: disabledFacts(false), args: enable,
			api:       fakeMetadataAPI{opts: ec2api.MetadataOptions{HTTPEndpoint: "disabled", HopLimit: 1}},
			wantPlan:  []string{"applied ModifyInstanceMetadataOptions applied: http_endpoint disabled → enabled, hop_limit 1 → 2"},
			wantCalls: []string{"describe", "modify http_endpoint = enabled, hop_limit = 2"},
			wantOpts:  ec2api.MetadataOptions{HTTPEndpoint: "enabled", HopLimit: 2}},
		{name: "already as wanted: no change planned",
			facts: disabledFacts(true), args: metadataArgs(map[string]cty.Value{"hop_limit": cty.NumberIntVal(2)}),
			api: fakeMetadataAPI{opts: ec2api.MetadataOptions{HopLimit: 2}}, wantOpts: ec2api.MetadataOptions{HopLimit: 2}},
		{name: "unauthorized: failed with who must change what, one call",
			facts: disabledFacts(true), args: enable,
			api:       fakeMetadataAPI{opts: ec2api.MetadataOptions{HTTPEndpoint: "disabled", HopLimit: 2}, modifyErr: &ec2api.Error{Kind: ec2api.KindUnauthorized, Op: "ModifyInstanceMetadataOptions", Code: "UnauthorizedOperation", Message: "You are not authorized"}},
			wantPlan:  []string{"failed ModifyInstanceMetadataOptions: http_endpoint disabled → enabled|ec2 ModifyInstanceMetadataOptions: UnauthorizedOperation: You are not authorized: an IAM administrator must allow ec2:ModifyInstanceMetadataOptions"},
			wantCalls: []string{"describe", "modify http_endpoint = enabled"},
			wantOpts:  ec2api.MetadataOptions{HTTPEndpoint: "disabled", HopLimit: 2}},
		{name: "never applied: recorded as made, with the reason, undoable",
			facts: disabledFacts(true), args: enable,
			api:       fakeMetadataAPI{opts: ec2api.MetadataOptions{HTTPEndpoint: "disabled", HopLimit: 2}, sentButNotApplied: true},
			wantPlan:  []string{"applied ModifyInstanceMetadataOptions: http_endpoint disabled → enabled|ec2 DescribeInstances: still pending: the change was accepted but not yet applied"},
			wantCalls: []string{"describe", "modify http_endpoint = enabled"},
			wantOpts:  ec2api.MetadataOptions{HTTPEndpoint: "enabled", HopLimit: 2},
			undo:      true, wantUndo: []string{"describe", "modify http_endpoint = disabled"}},
		{name: "tokens required refused while v1 callers were seen",
			facts: &facts.Facts{Identity: disabledFacts(false).Identity, EC2: &ec2facts.EC2{MetadataOptions: &ec2api.MetadataOptions{HTTPTokens: "optional"}}}, args: metadataArgs(map[string]cty.Value{"http_tokens": cty.StringVal("required"), "v1_callers": cty.ListVal([]cty.Value{cty.StringVal("legacy-agent")})}),
			api:      fakeMetadataAPI{opts: ec2api.MetadataOptions{HTTPTokens: "optional"}},
			wantPlan: []string{"skipped ModifyInstanceMetadataOptions: http_tokens optional → required|not required: IMDSv1 callers were seen (legacy-agent)"},
			wantOpts: ec2api.MetadataOptions{HTTPTokens: "optional"}},
		{name: "unknown region: failed, no call",
			facts: &facts.Facts{Identity: &identity.Identity{InstanceID: testInstance}}, args: enable,
			wantPlan: []string{"failed ModifyInstanceMetadataOptions: http_endpoint = enabled, hop_limit = 2|nothing was changed: the instance ID or region is unknown"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := tc.api
			x := metadataExecutor(t, &api, tc.facts)
			changes := x.Plan(context.Background(), "imds_endpoint_disabled", KindMetadataOptions, tc.args)
			x.Apply(context.Background(), changes)
			var got []string
			for _, c := range changes {
				s := string(c.Status) + " " + c.Detail
				if c.Error != "" {
					s += "|" + c.Error
				}
				got = append(got, s)
			}
			if len(got) != len(tc.wantPlan) {
				t.Fatalf("changes = %q, want %q", got, tc.wantPlan)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.wantPlan[i]) {
					t.Errorf("change %d = %q, want it to start with %q", i, got[i], tc.wantPlan[i])
				}
			}
			if d := cmp.Diff(tc.wantCalls, api.calls); d != "" {
				t.Errorf("calls (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.wantOpts, api.opts); d != "" {
				t.Errorf("options (-want +got):\n%s", d)
			}
			if len(api.calls) > 0 && (!api.cfg.NoIMDS || api.cfg.Region != "us-east-1") {
				t.Errorf("client config = %+v, want us-east-1 without IMDS (it answered 403)", api.cfg)
			}
			if !tc.undo {
				return
			}
			api.calls, api.sentButNotApplied = nil, false
			pending, err := x.Undoable(true, nil)
			if err != nil || len(pending) != 1 {
				t.Fatalf("undoable = %v, %v", pending, err)
			}
			x.Undo(context.Background(), pending)
			if pending[0].Status != types.StatusReverted {
				t.Errorf("undo = %s %s", pending[0].Status, pending[0].Error)
			}
			if d := cmp.Diff(tc.wantUndo, api.calls); d != "" {
				t.Errorf("undo calls (-want +got):\n%s", d)
			}
			if api.opts.HTTPEndpoint != "disabled" {
				t.Errorf("after undo: %+v", api.opts)
			}
		})
	}
}

func TestMetadataOptionsArgs(t *testing.T) {
	for _, tc := range []struct {
		args cty.Value
		want string
	}{
		{metadataArgs(map[string]cty.Value{"hop_limit": cty.NumberIntVal(65)}), "hop_limit must be a whole number from 1 to 64"},
		{metadataArgs(map[string]cty.Value{"http_endpoint": cty.StringVal("on")}), `http_endpoint must be enabled or disabled, not "on"`},
		{metadataArgs(nil), "nothing to set"},
	} {
		_, err := MetadataOptions{}.Plan(context.Background(), &Env{}, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Plan(%#v) = %v, want %q", tc.args, err, tc.want)
		}
	}
	// The bounds themselves are hop limits EC2 takes.
	for _, n := range []int64{1, 64} {
		ch, _, err := decodeMetadataArgs(metadataArgs(map[string]cty.Value{"hop_limit": cty.NumberIntVal(n)}))
		if err != nil || int64(ch.HopLimit) != n {
			t.Errorf("hop_limit %d: %d, %v", n, ch.HopLimit, err)
		}
	}
}

// TestMetadataOptionsReconcile: a run killed between the call and its result record
// leaves an intent whose snapshot holds the previous values; the next run asks the API,
// records the change as applied, and undo sets the previous values back. One changed by
// someone else since can't be told and stays open.
func TestMetadataOptionsReconcile(t *testing.T) {
	for _, tc := range []struct {
		name        string
		meddle      func(o *ec2api.MetadataOptions)
		wantStatus  types.Status
		wantUndoEnd string
	}{
		{name: "made", wantStatus: types.StatusApplied, wantUndoEnd: "disabled"},
		{name: "changed by someone since", meddle: func(o *ec2api.MetadataOptions) { o.HTTPEndpoint = "other" }, wantStatus: types.StatusFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := &fakeMetadataAPI{opts: ec2api.MetadataOptions{HTTPEndpoint: "disabled", HopLimit: 2}}
			x := metadataExecutor(t, api, disabledFacts(true))
			args := metadataArgs(map[string]cty.Value{"http_endpoint": cty.StringVal("enabled")})
			changes := x.Plan(context.Background(), "imds_endpoint_disabled", KindMetadataOptions, args)
			runUntilCrash(t, x, func() { x.Apply(context.Background(), changes) })
			if tc.meddle != nil {
				tc.meddle(&api.opts)
			}
			x.RunID = "run-2"
			settled, err := x.Reconcile(context.Background())
			if err != nil || len(settled) != 1 {
				t.Fatalf("reconcile = %+v, %v", settled, err)
			}
			if settled[0].Status != tc.wantStatus {
				t.Fatalf("reconciled %s (%s), want %s", settled[0].Status, settled[0].Error, tc.wantStatus)
			}
			if tc.wantUndoEnd == "" {
				return
			}
			pending, err := x.Undoable(true, nil)
			if err != nil || len(pending) != 1 {
				t.Fatalf("undoable = %v, %v", pending, err)
			}
			x.Undo(context.Background(), pending)
			if pending[0].Status != types.StatusReverted || api.opts.HTTPEndpoint != tc.wantUndoEnd {
				t.Errorf("undo: %s %s, endpoint %s", pending[0].Status, pending[0].Error, api.opts.HTTPEndpoint)
			}
		})
	}
}

// TestMetadataOptionsNotAllowed: without allow.ec2_api the change is skipped for that
// reason, whatever else is unknown, and nothing is called.
func TestMetadataOptionsNotAllowed(t *testing.T) {
	api := &fakeMetadataAPI{}
	x := metadataExecutor(t, api, &facts.Facts{IMDS: &types.IMDS{Class: types.ClassHTTP403, Stage: types.StageToken}})
	x.Env.Allow = func(types.Permission) bool { return false }
	changes := x.Plan(context.Background(), "imds_endpoint_disabled", KindMetadataOptions, metadataArgs(map[string]cty.Value{"http_endpoint": cty.StringVal("enabled")}))
	x.Apply(context.Background(), changes)
	if len(changes) != 1 || changes[0].Status != types.StatusSkipped || !strings.Contains(changes[0].Error, "ec2_api = true") || len(api.calls) != 0 {
		t.Errorf("changes = %+v, calls %v; want one skipped as not allowed, no call", changes, api.calls)
	}
}
