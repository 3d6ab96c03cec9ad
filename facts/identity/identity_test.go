package identity

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/tests/tree"
)

func fixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestRead(t *testing.T) {
	const (
		this  = "i-0123456789abcdef0"
		baked = "i-0fedcba9876543210"
		run   = "i-1234567890abcdef0" // instance-data-ec2.json's
	)
	ec2Data, noneData := fixture(t, "instance-data-ec2.json"), fixture(t, "instance-data-none.json")
	for _, tc := range []struct {
		name     string
		files    map[string]string
		env      map[string]string
		policy   string
		policyID string
		imds     string
		want     Identity
		notes    int
	}{
		{name: "nothing known", want: Identity{}},
		{name: "nitro asset tag and dnf region", files: map[string]string{DMIAssetTag: this + "\n", DnfRegion: "eu-west-1\n"},
			want: Identity{InstanceID: this, InstanceIDSource: SourceDMI, Region: "eu-west-1", RegionSource: SourceDnfVars, Verified: true}},
		{name: "yum says default: unknown", files: map[string]string{YumRegion: "default\n", DnfRegion: "default\n"}, want: Identity{}},
		{name: "cloud-init this boot", files: map[string]string{InstanceData: ec2Data, CloudInitCache: run + "\n"},
			want: Identity{InstanceID: run, InstanceIDSource: SourceCloudInit, Region: "us-east-1", RegionSource: SourceCloudInit, Verified: true}},
		{name: "baked cache is stale", files: map[string]string{DMIAssetTag: this, CloudInitCache: baked + "\n", InstanceData: noneData},
			want: Identity{InstanceID: this, InstanceIDSource: SourceDMI, Verified: true, StaleCache: true}, notes: 1},
		{name: "only the cache: unverified", files: map[string]string{CloudInitCache: baked},
			want: Identity{InstanceID: baked, InstanceIDSource: SourceCache}, notes: 1},
		{name: "imds first", imds: this, files: map[string]string{InstanceData: ec2Data},
			want: Identity{InstanceID: this, InstanceIDSource: SourceIMDS, Region: "us-east-1", RegionSource: SourceCloudInit, Verified: true}, notes: 1},
		{name: "policy over env over files", policy: "ap-south-1", env: map[string]string{RegionEnv: "eu-central-1"}, files: map[string]string{DnfRegion: "eu-central-1"},
			want: Identity{Region: "ap-south-1", RegionSource: SourcePolicy}, notes: 2},
		{name: "policy instance ID before DMI", policy: "eu-west-1", files: map[string]string{DMIAssetTag: baked}, policyID: this,
			want: Identity{InstanceID: this, InstanceIDSource: SourcePolicy, Region: "eu-west-1", RegionSource: SourcePolicy, Verified: true}, notes: 1},
		{name: "env region", env: map[string]string{RegionEnv: "us-gov-west-1"},
			want: Identity{Region: "us-gov-west-1", RegionSource: SourceEnv}},
		{name: "garbage is no value", files: map[string]string{DMIAssetTag: "Amazon EC2", DnfRegion: "$awsregion", InstanceData: "{"}, env: map[string]string{RegionEnv: "mars"},
			want: Identity{}, notes: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tree.Write(t, root, tc.files)
			got := Read(Config{Paths: paths.New(root), Getenv: func(k string) string { return tc.env[k] }, PolicyRegion: tc.policy, PolicyInstanceID: tc.policyID, IMDSInstanceID: tc.imds})
			if d := cmp.Diff(tc.want, *got, cmpopts.IgnoreFields(Identity{}, "Sources", "Notes"), cmpopts.IgnoreUnexported(Identity{})); d != "" {
				t.Errorf("Read (-want +got):\n%s", d)
			}
			if len(got.Notes) != tc.notes {
				t.Errorf("notes = %q, want %d", got.Notes, tc.notes)
			}
			for _, v := range got.Sources {
				if v.Path == "" || v.Source == "" {
					t.Errorf("source without origin: %+v", v)
				}
			}
		})
	}
}

// TestAddIMDS: IMDS's answer, added once the probes are in, comes first and shows the
// baked cache as stale.
func TestAddIMDS(t *testing.T) {
	root := t.TempDir()
	tree.Write(t, root, map[string]string{CloudInitCache: "i-0fedcba9876543210", YumRegion: "eu-west-1"})
	id := Read(Config{Paths: paths.New(root)})
	if id.Verified || id.StaleCache {
		t.Fatalf("before IMDS: %+v", id)
	}
	id.AddIMDS("i-0123456789abcdef0")
	want := Identity{InstanceID: "i-0123456789abcdef0", InstanceIDSource: SourceIMDS, Region: "eu-west-1", RegionSource: SourceYumVars, Verified: true, StaleCache: true}
	if d := cmp.Diff(want, *id, cmpopts.IgnoreFields(Identity{}, "Sources", "Notes"), cmpopts.IgnoreUnexported(Identity{})); d != "" {
		t.Errorf("AddIMDS (-want +got):\n%s", d)
	}
	if len(id.Notes) != 1 {
		t.Errorf("notes = %q, want the stale cache's", id.Notes)
	}
}

// TestReadStaysInRoot: a link out of --root is not followed.
func TestReadStaysInRoot(t *testing.T) {
	outside := t.TempDir()
	tree.Write(t, outside, map[string]string{"id": "i-0123456789abcdef0"})
	root := t.TempDir()
	tree.Write(t, root, map[string]string{CloudInitCache: "->" + filepath.Join(outside, "id")})
	if got := Read(Config{Paths: paths.New(root)}); got.InstanceID != "" {
		t.Errorf("read through a link out of --root: %+v", got)
	}
}
