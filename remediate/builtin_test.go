package remediate

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/tests/tree"
)

// Builtin hands its Deps to the fixers that use them: restart_units runs the given
// systemctl (even under --root, where the real one is refused) and spares the given unit.
func TestBuiltinDeps(t *testing.T) {
	root := t.TempDir()
	tree.Write(t, root, map[string]string{"etc/systemd/system/docker.service.d/http-proxy.conf": "[Service]\nEnvironment=HTTP_PROXY=http://p:3128\nEnvironment=NO_PROXY=169.254.169.254\n"})
	env := testEnv(root, false)
	var calls []string
	reg := Builtin(Deps{
		Systemctl: func(_ context.Context, args ...string) error {
			calls = append(calls, strings.Join(args, " "))
			return nil
		},
		SelfUnit: func() string { return "ci-runner.service" },
	})
	if !slices.Equal(reg.Kinds(), []string{"cloud_init_rerun", "firewall_allow", "firewall_delete", "metadata_options", "no_proxy", "rate_limit_caller", "restart_unit", "route_restore"}) {
		t.Errorf("kinds = %v", reg.Kinds())
	}
	fx, _ := reg.Get(KindRestartUnit)
	ctx := context.Background()
	changes, err := fx.Plan(ctx, env, unitsArg("docker.service", "ci-runner.service"))
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 || changes[1].Status != "skipped" {
		t.Fatalf("plan = %+v, want ci-runner.service (this imdsmend's unit) skipped", changes)
	}
	if err := fx.Apply(ctx, env, changes[0]); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(calls, []string{"daemon-reload", "try-restart docker.service"}) {
		t.Errorf("systemctl calls = %v, want the injected runner's", calls)
	}
}
