package remediate

import "context"

// Deps is what the built-in fixers take from outside the process — the commands they run
// and what they read of the running system — so a caller (a test, or a fixer that needs a
// client, such as one for the EC2 API) hands it in instead of each fixer reaching for it.
// The zero value uses the real ones.
type Deps struct {
	// Systemctl runs systemctl with args (restart_units). Nil runs paths.Systemctl, and
	// only when --root is "/": the units of another tree don't run here.
	Systemctl func(ctx context.Context, args ...string) error
	// SelfUnit is the unit that runs this imdsmend, which restart_units never restarts;
	// nil reads it from /proc/self/cgroup.
	SelfUnit func() string
	// CloudInit runs cloud-init with args (cloud_init_rerun). Nil runs paths.CloudInit, and
	// only when --root is "/".
	CloudInit func(ctx context.Context, args ...string) error
}

// Builtin is the registry of every fixer shipped with imdsmend, built with deps.
// Registration is explicit so a reader sees all kinds in one place.
func Builtin(deps Deps) *Registry {
	r, err := NewRegistry(
		FirewallDelete{},
		FirewallAllow{},
		RouteRestore{},
		NoProxy{},
		RestartUnit{Systemctl: deps.Systemctl, Self: deps.SelfUnit},
		RateLimitCaller{},
		CloudInitRerun{Run: deps.CloudInit},
	)
	if err != nil {
		panic(err)
	}
	return r
}
