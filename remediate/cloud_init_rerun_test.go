package remediate

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/facts/cloudinit"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/zclconf/go-cty/cty"
)

// missed is this boot's cloud-init that ended on DataSourceNone.
var missed = &cloudinit.CloudInit{Installed: true, Ran: true, Finished: true, Datasource: "DataSourceNone", DatasourceName: "None", Ec2Configured: true, BootID: "b00t"}

func TestCloudInitRerunPlan(t *testing.T) {
	healthy := &types.IMDS{Reachable: true, Class: "ok"}
	tests := []struct {
		name   string
		facts  *facts.Facts
		marker bool
		want   string // the skip reason's start; empty: planned
	}{
		{"IMDS healthy, cloud-init missed", &facts.Facts{IMDS: healthy, CloudInit: missed}, false, ""},
		{"IMDS still blocked", &facts.Facts{IMDS: &types.IMDS{Class: "connection_refused"}, CloudInit: missed}, false, "not rerun: IMDS is not healthy"},
		{"IMDS probe failed", &facts.Facts{CloudInit: missed}, false, "not rerun: IMDS is not healthy"},
		{"cloud-init still running", &facts.Facts{IMDS: healthy, CloudInit: &cloudinit.CloudInit{Installed: true, Ran: true, Stage: "init"}}, false, "not rerun: cloud-init has not finished"},
		{"already reran once", &facts.Facts{IMDS: healthy, CloudInit: missed}, true, "not rerun: imdsmend already reran cloud-init (from boot old-boot)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := testEnv(t.TempDir(), false)
			env.Facts = tt.facts
			if tt.marker {
				if err := env.Paths.MkdirAll(env.Paths.StateDir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := env.Paths.WriteFile(markerPath(env), []byte("old-boot\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			changes, err := CloudInitRerun{}.Plan(context.Background(), env, cty.EmptyObjectVal)
			if err != nil {
				t.Fatal(err)
			}
			if len(changes) != 1 {
				t.Fatalf("changes = %d, want 1", len(changes))
			}
			c := changes[0]
			if tt.want == "" && (c.Status != "" || c.Error != "") || !strings.HasPrefix(c.Error, tt.want) {
				t.Errorf("Plan = %q %q, want a skip starting %q", c.Status, c.Error, tt.want)
			}
			if tt.want != "" && c.Status != types.StatusSkipped {
				t.Errorf("status = %q, want skipped", c.Status)
			}
		})
	}
}

func TestCloudInitRerunApply(t *testing.T) {
	ctx := context.Background()
	env := testEnv(t.TempDir(), false)
	env.Facts = &facts.Facts{IMDS: &types.IMDS{Reachable: true}, CloudInit: missed}
	var calls []string
	runErr := errors.New("exit status 1")
	fx := CloudInitRerun{Run: func(_ context.Context, args ...string) error {
		calls = append(calls, strings.Join(args, " "))
		return runErr
	}}
	c := &Change{Target: "cloud-init"}

	// A failed clean reruns nothing and leaves no marker: the next run may try again.
	if err := fx.Apply(ctx, env, c); err == nil || !strings.Contains(err.Error(), "not rerun") {
		t.Errorf("Apply = %v, want the command's failure", err)
	}
	if _, err := os.Stat(env.Paths.State(rerunMarker)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("marker after a failed rerun: %v", err)
	}

	runErr = nil
	if err := fx.Apply(ctx, env, c); err != nil {
		t.Fatal(err)
	}
	if want := []string{"clean --logs --reboot", "clean --logs --reboot"}; strings.Join(calls, "|") != strings.Join(want, "|") {
		t.Errorf("calls = %q, want %q", calls, want)
	}
	if got, err := os.ReadFile(env.Paths.State(rerunMarker)); err != nil || string(got) != "b00t\n" {
		t.Errorf("marker = %q, %v; want the boot ID", got, err)
	}
	// The marker stops a second rerun.
	changes, err := fx.Plan(ctx, env, cty.EmptyObjectVal)
	if err != nil || changes[0].Status != types.StatusSkipped {
		t.Errorf("Plan after a rerun = %+v, %v; want skipped", changes[0], err)
	}

	if err := fx.Undo(ctx, env, c); err != nil || !strings.HasPrefix(c.Detail, "nothing to revert") {
		t.Errorf("Undo = %v, detail %q", err, c.Detail)
	}
	if ok, err := fx.Observe(ctx, env, c); !ok || err != nil {
		t.Errorf("Observe = %v, %v", ok, err)
	}
}

// Under another --root without a runner, nothing reboots this host.
func TestCloudInitRerunOtherRoot(t *testing.T) {
	env := testEnv(t.TempDir(), false)
	env.Facts = &facts.Facts{IMDS: &types.IMDS{Reachable: true}, CloudInit: missed}
	err := CloudInitRerun{}.Apply(context.Background(), env, &Change{Target: "cloud-init"})
	if err == nil || !strings.Contains(err.Error(), "is not the running system") {
		t.Errorf("Apply = %v, want a refusal", err)
	}
}
