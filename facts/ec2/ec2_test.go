package ec2

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/facts/identity"
	"github.com/imdsmend/imdsmend/internal/ec2api"
	"github.com/imdsmend/imdsmend/internal/paths"
)

type fakeAPI struct {
	calls    map[string]int
	noCreds  bool
	describe error
	tokens   string
}

func (f *fakeAPI) Credentials(context.Context) (string, error) {
	f.calls["Credentials"]++
	if f.noCreds {
		return "", &ec2api.Error{Kind: ec2api.KindNoCredentials, Op: ec2api.OpAuthenticate, Message: "none"}
	}
	return "EnvConfigCredentials", nil
}

func (f *fakeAPI) Describe(_ context.Context, id string) (*ec2api.Instance, error) {
	f.calls["DescribeInstances"]++
	if f.describe != nil {
		return nil, f.describe
	}
	return &ec2api.Instance{ID: id, State: "running", ImageID: "ami-1", Tags: map[string]string{"Name": "web"},
		MetadataOptions: ec2api.MetadataOptions{State: "applied", HTTPEndpoint: "enabled", HTTPTokens: f.tokens, HopLimit: 1}}, nil
}

func (f *fakeAPI) Defaults(context.Context) (*ec2api.Defaults, error) {
	f.calls["GetInstanceMetadataDefaults"]++
	return &ec2api.Defaults{ManagedBy: "account"}, nil
}

func (f *fakeAPI) ImageIMDSSupport(context.Context, string) (string, error) {
	f.calls["DescribeImages"]++
	return "v2.0", nil
}

func TestGather(t *testing.T) {
	id := &identity.Identity{InstanceID: "i-0123456789abcdef0", Region: "eu-west-1"}
	t0 := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	type run struct {
		at        time.Duration // after t0
		want      map[string]int
		wantKinds []string
		cached    bool
	}
	for _, tc := range []struct {
		name string
		api  fakeAPI
		id   *identity.Identity
		runs []run
	}{
		{name: "one call, then the kept answer within the interval, then a call again", api: fakeAPI{tokens: "required"}, id: id, runs: []run{
			{at: 0, want: map[string]int{"Credentials": 1, "DescribeInstances": 1, "GetInstanceMetadataDefaults": 1}},
			{at: 4 * time.Minute, want: map[string]int{}, cached: true},
			{at: 5 * time.Minute, want: map[string]int{"Credentials": 1, "DescribeInstances": 1, "GetInstanceMetadataDefaults": 1}},
		}},
		{name: "optional tokens: the AMI is asked", api: fakeAPI{tokens: "optional"}, id: id, runs: []run{
			{want: map[string]int{"Credentials": 1, "DescribeInstances": 1, "DescribeImages": 1, "GetInstanceMetadataDefaults": 1}},
		}},
		{name: "no credentials: no call, a plain error, nothing kept", api: fakeAPI{noCreds: true}, id: id, runs: []run{
			{want: map[string]int{"Credentials": 1}, wantKinds: []string{"no_credentials"}},
			{want: map[string]int{"Credentials": 1}, wantKinds: []string{"no_credentials"}},
		}},
		{name: "failures are not kept", api: fakeAPI{describe: &ec2api.Error{Kind: ec2api.KindUnauthorized, Op: "DescribeInstances"}}, id: id, runs: []run{
			{want: map[string]int{"Credentials": 1, "DescribeInstances": 1, "GetInstanceMetadataDefaults": 1}, wantKinds: []string{"unauthorized"}},
			{want: map[string]int{"Credentials": 1, "DescribeInstances": 1, "GetInstanceMetadataDefaults": 1}, wantKinds: []string{"unauthorized"}},
		}},
		{name: "unknown instance: no call", api: fakeAPI{}, id: &identity.Identity{Region: "eu-west-1"}, runs: []run{
			{want: map[string]int{}, wantKinds: []string{"instance_not_found"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := paths.New(t.TempDir())
			for i, r := range tc.runs {
				api := tc.api
				api.calls = map[string]int{}
				got, err := Gather(context.Background(), Config{Paths: p, Identity: tc.id, CacheFor: 5 * time.Minute, Now: t0.Add(r.at),
					New: func(context.Context, ec2api.Config) (API, error) { return &api, nil }})
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(r.want, api.calls); d != "" {
					t.Errorf("run %d: calls (-want +got):\n%s", i, d)
				}
				var kinds []string
				for _, e := range got.Errors {
					kinds = append(kinds, e.Kind)
					if e.Hint == "" {
						t.Errorf("run %d: error without a hint: %+v", i, e)
					}
				}
				if d := cmp.Diff(r.wantKinds, kinds); d != "" {
					t.Errorf("run %d: error kinds (-want +got):\n%s", i, d)
				}
				if got.Cached != r.cached {
					t.Errorf("run %d: cached = %v, want %v", i, got.Cached, r.cached)
				}
				if len(r.wantKinds) == 0 && got.MetadataOptions == nil {
					t.Errorf("run %d: no metadata options", i)
				}
			}
		})
	}
}

// TestForget: after a fixer changes the options, the next probe asks again, and the
// other keys of state.json stay.
func TestForget(t *testing.T) {
	p := paths.New(t.TempDir())
	if err := p.MkdirAll(p.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteFile(p.StateDir+"/"+StateFile, []byte(`{"nic": {"time": "x"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	api := &fakeAPI{tokens: "required", calls: map[string]int{}}
	cfg := Config{Paths: p, Identity: &identity.Identity{InstanceID: "i-0123456789abcdef0", Region: "eu-west-1"}, CacheFor: time.Hour, Now: time.Now(),
		New: func(context.Context, ec2api.Config) (API, error) { return api, nil }}
	for range 2 {
		if _, err := Gather(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
	}
	if err := Forget(p); err != nil {
		t.Fatal(err)
	}
	if _, err := Gather(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if api.calls["DescribeInstances"] != 2 {
		t.Errorf("DescribeInstances calls = %d, want 2 (the first run and after Forget)", api.calls["DescribeInstances"])
	}
	if _, ok := readDoc(p)["nic"]; !ok {
		t.Error("the nic key of state.json was lost")
	}
}
