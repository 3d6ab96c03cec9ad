package remediate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/tests/tree"
	"github.com/zclconf/go-cty/cty"
)

func unitsArg(units ...string) cty.Value {
	vals := make([]cty.Value, len(units))
	for i, u := range units {
		vals[i] = cty.StringVal(u)
	}
	return cty.ObjectVal(map[string]cty.Value{"units": cty.ListVal(vals)})
}

func TestRestartUnit(t *testing.T) {
	root := t.TempDir()
	dropIn := "etc/systemd/system/docker.service.d/http-proxy.conf"
	tree.Write(t, root, map[string]string{dropIn: "[Service]\nEnvironment=HTTP_PROXY=http://p:3128\n"})
	env := testEnv(root, false)
	var calls []string
	fx := RestartUnit{Systemctl: func(_ context.Context, args ...string) error {
		calls = append(calls, strings.Join(args, " "))
		return nil
	}}
	ctx := context.Background()

	changes, err := fx.Plan(ctx, env, unitsArg("docker.service", "docker.service", "--now.service", "x.socket"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.Target+" "+c.Status+" "+c.Error)
	}
	want := []string{"docker.service  ", `--now.service failed "--now.service" is not a service name`, `x.socket failed "x.socket" is not a service name`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}

	// The unit's drop-in still leaks: a restart would change nothing, so none happens.
	err = fx.Apply(ctx, env, changes[0])
	if err == nil || !strings.Contains(err.Error(), "not restarted: docker.service's configuration still sends IMDS requests to the proxy in HTTP_PROXY") || len(calls) != 0 {
		t.Errorf("Apply = %v, calls %v; want a refusal and no systemctl", err, calls)
	}

	// Fixed: reload, then restart only if running.
	tree.Write(t, root, map[string]string{"etc/systemd/system/docker.service.d/np.conf": "[Service]\nEnvironment=NO_PROXY=169.254.169.254\n"})
	if err := fx.Apply(ctx, env, changes[0]); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"daemon-reload", "try-restart docker.service"}, calls); diff != "" {
		t.Errorf("systemctl calls (-want +got):\n%s", diff)
	}

	failing := RestartUnit{Systemctl: func(context.Context, ...string) error { return errors.New("systemctl daemon-reload: exit status 1") }}
	if err := failing.Apply(ctx, env, changes[0]); err == nil || err.Error() != "not restarted: systemctl daemon-reload: exit status 1" {
		t.Errorf("Apply with a failing systemctl = %v", err)
	}

	// Without an injected runner, only the running system's units are restarted.
	if err := (RestartUnit{}).Apply(ctx, env, changes[0]); err == nil || !strings.Contains(err.Error(), "is not the running system") {
		t.Errorf("Apply under --root = %v, want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(root, dropIn)); err != nil {
		t.Fatal(err)
	}
	if err := fx.Undo(ctx, env, changes[0]); err != nil {
		t.Errorf("Undo = %v; a restart has nothing to take back", err)
	}
}
