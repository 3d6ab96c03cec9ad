package remediate

import (
	"context"

	"github.com/imdsmend/imdsmend/internal/ec2api"
)

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
	// EC2 builds the EC2 API client (metadata_options); nil builds an *ec2api.Client.
	EC2 func(ctx context.Context, cfg ec2api.Config) (MetadataAPI, error)
	// EC2Reprobe checks IMDS again after metadata_options applied a change, from the host
	// and the containers; nil leaves it to the run's probe after apply.
	EC2Reprobe func(ctx context.Context, env *Env) string
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
		MetadataOptions{New: deps.EC2, Reprobe: deps.EC2Reprobe},
	)
	if err != nil {
		panic(err)
	}
	return r
}
