package remediate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/internal/types"
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
		got = append(got, c.Target+" "+string(c.Status)+" "+c.Error)
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

// TestRestartUnitAllowList: a proxy in DefaultEnvironment= reaches nearly every service;
// restart_units = true restarts only units whose own drop-ins set the proxy, a list
// restarts the units it names, and neither ever restarts imdsmend's own units, dbus,
// journald, sshd or the unit that runs imdsmend.
func TestRestartUnitAllowList(t *testing.T) {
	root := t.TempDir()
	tree.Write(t, root, map[string]string{
		"etc/systemd/system.conf.d/proxy.conf":                "[Manager]\nDefaultEnvironment=HTTP_PROXY=http://p:3128\n",
		"etc/systemd/system/docker.service.d/http-proxy.conf": "[Service]\nEnvironment=HTTP_PROXY=http://p:3128\n",
		"etc/systemd/system/sshd.service.d/http-proxy.conf":   "[Service]\nEnvironment=HTTP_PROXY=http://p:3128\n",
		// A drop-in that resets the proxy does not set it.
		"etc/systemd/system/cron.service.d/reset.conf": "[Service]\nEnvironment=HTTP_PROXY=http://p:3128\nEnvironment=\n",
	})
	units := unitsArg("docker.service", "amazon-ssm-agent.service", "dbus.service", "systemd-journald.service", "sshd.service",
		"imdsmend-watch.service", "cron.service", "ci-runner.service")
	const (
		own     = "own drop-ins"
		listed  = "matches none"
		never   = "does not restart its own units"
		running = "runs this imdsmend"
	)
	tests := []struct {
		name  string
		globs []string
		want  []string // per unit: "" when planned, else a piece of the reason it is skipped
	}{
		{"true: only units whose own files set the proxy", nil,
			[]string{"", own, never, never, never, never, own, running}},
		{"a list of globs", []string{"*.service"},
			[]string{"", "", never, never, never, never, "", running}},
		{"a list naming one unit", []string{"amazon-ssm-agent.service"},
			[]string{listed, "", never, never, never, never, listed, running}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := testEnv(root, false)
			env.RestartUnits = tt.globs
			fx := RestartUnit{Self: func() string { return "ci-runner.service" }}
			// Through the executor, as a run plans them: a skipped unit stays skipped.
			reg, err := NewRegistry(fx)
			if err != nil {
				t.Fatal(err)
			}
			x := &Executor{Registry: reg, Env: env, Ledger: NewLedger(filepath.Join(t.TempDir(), "ledger.jsonl")), Enforce: true}
			changes := x.Plan(context.Background(), "proxy_leak", KindRestartUnit, units)
			if len(changes) != len(tt.want) {
				t.Fatalf("%d changes, want %d", len(changes), len(tt.want))
			}
			for i, c := range changes {
				switch {
				case tt.want[i] == "" && (c.Status != types.StatusPlanned || c.Error != ""):
					t.Errorf("%s: %s %q; want it planned", c.Target, c.Status, c.Error)
				case tt.want[i] != "" && (c.Status != types.StatusSkipped || !strings.Contains(c.Error, tt.want[i])):
					t.Errorf("%s: %s %q; want skipped: %s", c.Target, c.Status, c.Error, tt.want[i])
				}
			}
		})
	}
}
