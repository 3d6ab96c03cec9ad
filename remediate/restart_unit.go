package remediate

import (
	"context"
	"fmt"
	"os/exec"
	"path"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/imdsmend/imdsmend/facts/proxy"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/zclconf/go-cty/cty"
)

// KindRestartUnit is the remediation kind of RestartUnit.
const KindRestartUnit = "restart_unit"

// RestartUnit restarts services whose running processes still carry a proxy environment
// that sends IMDS requests to the proxy, once the unit's configuration no longer does:
// processes keep the environment they started with. It is the follow-up of no_proxy and
// needs its own permission, restart_units, which also says which units: a list of globs,
// or true for units whose own drop-ins set the proxy. A proxy in DefaultEnvironment=
// reaches nearly every service; true never makes imdsmend restart all of them.
type RestartUnit struct {
	// Systemctl runs systemctl with args. Nil runs paths.Systemctl, and only when --root is
	// "/": the units of another tree don't run here.
	Systemctl func(ctx context.Context, args ...string) error
	// Self is the unit that runs this imdsmend; nil reads it from /proc/self/cgroup.
	Self func() string
}

// Kind implements Fixer.
func (RestartUnit) Kind() string { return KindRestartUnit }

// Doc implements Fixer.
func (RestartUnit) Doc() string {
	return "restart services whose running processes still send IMDS requests to a proxy (systemctl try-restart)"
}

// Permission implements Fixer.
func (RestartUnit) Permission() types.Permission { return types.PermRestartUnits }

// Spec implements Fixer: `units` lists the services to restart.
func (RestartUnit) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{"units": &hcldec.AttrSpec{Name: "units", Type: cty.List(cty.String), Required: true}}
}

// A service name systemctl can't mistake for an option or a pattern.
var serviceName = regexp.MustCompile(`^[A-Za-z0-9:_.\\@-]+\.service$`)

// protectedUnits are never restarted, whatever the policy allows: imdsmend's own units,
// the bus and the journal the rest of the system leans on, and the way into the instance.
var protectedUnits = []string{"imdsmend*.service", "dbus.service", "dbus-broker.service", "systemd-journald.service",
	"sshd.service", "ssh.service", "sshd@*.service", "ssh@*.service"}

// Plan implements Fixer. Units the policy does not allow, and protected ones, are skipped
// with the reason.
func (r RestartUnit) Plan(_ context.Context, env *Env, args cty.Value) ([]*Change, error) {
	units, err := stringList(args, "units")
	if err != nil {
		return nil, err
	}
	self := r.Self
	if self == nil {
		self = proxy.SelfUnit
	}
	running := self()
	var conf *proxy.Config // read once, when restart_units = true needs it
	var changes []*Change
	for _, u := range units {
		c := &Change{Target: u, Detail: fmt.Sprintf("systemctl daemon-reload && systemctl try-restart %s: its processes still send IMDS requests to a proxy; a restart gives them the fixed configuration", u)}
		switch {
		case !serviceName.MatchString(u) || strings.HasPrefix(u, "-"):
			c.Status, c.Error = types.StatusFailed, fmt.Sprintf("%q is not a service name", u)
		case u == running:
			c.Status, c.Error = types.StatusSkipped, fmt.Sprintf("never restarted: %s runs this imdsmend; restart it by hand", u)
		case matchAny(protectedUnits, u):
			c.Status, c.Error = types.StatusSkipped, fmt.Sprintf("never restarted: imdsmend does not restart its own units, dbus, systemd-journald or sshd; restart %s by hand", u)
		case env.RestartUnits != nil:
			if !matchAny(env.RestartUnits, u) {
				c.Status, c.Error = types.StatusSkipped, fmt.Sprintf("not restarted: %s matches none of settings.allow.restart_units %q; add it there to allow it", u, env.RestartUnits)
			}
		default:
			if conf == nil {
				conf = proxy.LoadConfig(env.Paths)
			}
			if !conf.UnitSetsProxy(u) {
				c.Status, c.Error = types.StatusSkipped, fmt.Sprintf("not restarted: restart_units = true allows only units whose own drop-ins set the proxy, and %s gets it from elsewhere (DefaultEnvironment=?); name it in settings { allow { restart_units = [\"%s\"] } } to allow it", u, u)
			}
		}
		changes = append(changes, c)
	}
	return changes, nil
}

// matchAny reports whether unit matches one of the globs.
func matchAny(globs []string, unit string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, unit); ok {
			return true
		}
	}
	return false
}

// Apply implements Fixer. It restarts only a unit whose configuration, as it is now,
// bypasses the proxy for IMDS: otherwise the restart would change nothing and the next
// run would restart it again.
func (r RestartUnit) Apply(ctx context.Context, env *Env, c *Change) error {
	unit := c.Target
	conf := proxy.LoadConfig(env.Paths)
	if uses := proxy.IMDSProxyUses(conf.UnitEnv(unit), proxy.Hosts(env.IPv6)); len(uses) > 0 {
		return fmt.Errorf("not restarted: %s's configuration still sends IMDS requests to the proxy in %s; fix it first (no_proxy)", unit, uses[0].ProxyVar)
	}
	run := r.Systemctl
	if run == nil {
		if env.Paths.Root != "/" {
			return fmt.Errorf("not restarted: --root %s is not the running system; restart %s there", env.Paths.Root, unit)
		}
		run = runSystemctl
	}
	if err := run(ctx, "daemon-reload"); err != nil {
		return fmt.Errorf("not restarted: %w", err)
	}
	return run(ctx, "try-restart", unit)
}

// Undo implements Fixer. A restart can't be taken back; the unit keeps the environment it
// started with until its next restart, which is harmless: it only bypasses the proxy for
// IMDS.
func (RestartUnit) Undo(_ context.Context, _ *Env, c *Change) error {
	c.Detail = "nothing to revert: a restart can't be taken back; " + c.Target + " keeps running with its current environment until its next restart"
	return nil
}

// Observe implements Fixer. A restart leaves no trace to look for; it is taken as made,
// which is harmless: undo has nothing to revert, and the next run restarts the unit again
// if its processes still send IMDS requests to a proxy.
func (RestartUnit) Observe(context.Context, *Env, *Change) (bool, error) { return true, nil }

func runSystemctl(ctx context.Context, args ...string) error {
	return runTool(ctx, paths.Systemctl, args...)
}

// runTool runs name with args; its output goes into the error.
func runTool(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
