package facts

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/imdsmend/imdsmend/facts/callers"
	"github.com/imdsmend/imdsmend/facts/cloudinit"
	"github.com/imdsmend/imdsmend/facts/containers"
	"github.com/imdsmend/imdsmend/facts/ec2"
	"github.com/imdsmend/imdsmend/facts/firewall"
	"github.com/imdsmend/imdsmend/facts/identity"
	"github.com/imdsmend/imdsmend/facts/imds"
	"github.com/imdsmend/imdsmend/facts/nic"
	"github.com/imdsmend/imdsmend/facts/proxy"
	"github.com/imdsmend/imdsmend/facts/route"
)

// DefaultProbes are the probes every run gathers, in no particular order (they run
// concurrently).
func DefaultProbes() []Probe {
	return []Probe{imdsProbe{}, firewallProbe{}, routeProbe{}, proxyProbe{}, nicProbe{}, callersProbe{}, cloudInitProbe{}, containersProbe{}, identityProbe{}, ec2Probe{}}
}

// The probes adapt each source package's reader to Probe: the source packages know
// nothing of Facts or Config, so they import no hub and each other only for shared
// lookups (firewall asks route which way IMDS traffic leaves).

// imdsProbe fills facts.imds (and facts.imds_ipv6 when cfg.IPv6 is set).
type imdsProbe struct{}

func (imdsProbe) Name() string { return "imds" }

func (imdsProbe) Gather(ctx context.Context, cfg Config, f *Facts) error {
	v4, v6, err := imds.Gather(ctx, cfg.IMDS, cfg.IPv6)
	f.IMDS, f.IMDSv6 = v4, v6
	return err
}

// firewallProbe fills facts.firewall.
type firewallProbe struct{}

func (firewallProbe) Name() string { return "firewall" }

func (firewallProbe) Gather(ctx context.Context, cfg Config, f *Facts) (err error) {
	f.Firewall, err = firewall.Read(ctx, firewall.Config{Paths: cfg.Paths, IPv6: cfg.IPv6})
	return err
}

// routeProbe fills facts.route.
type routeProbe struct{}

func (routeProbe) Name() string { return "route" }

func (routeProbe) Gather(_ context.Context, _ Config, f *Facts) (err error) {
	f.Route, err = route.Read()
	return err
}

// proxyProbe fills facts.proxy.
type proxyProbe struct{}

func (proxyProbe) Name() string { return "proxy" }

func (proxyProbe) Gather(ctx context.Context, cfg Config, f *Facts) (err error) {
	f.Proxy, err = proxy.Gather(ctx, cfg.Paths, proxy.Hosts(cfg.IPv6))
	return err
}

// nicProbe fills facts.nic.
type nicProbe struct{}

func (nicProbe) Name() string { return "nic" }

func (nicProbe) Gather(ctx context.Context, cfg Config, f *Facts) (err error) {
	f.NIC, err = nic.Read(ctx, nic.Config{Paths: cfg.Paths, Now: time.Now()})
	return err
}

// callersProbe fills facts.callers.
type callersProbe struct{}

func (callersProbe) Name() string { return "callers" }

func (callersProbe) Gather(ctx context.Context, cfg Config, f *Facts) (err error) {
	f.Callers, err = callers.Gather(ctx, callers.DefaultConfig(cfg.Paths))
	return err
}

// cloudInitProbe fills facts.cloud_init.
type cloudInitProbe struct{}

func (cloudInitProbe) Name() string { return "cloud_init" }

func (cloudInitProbe) Gather(_ context.Context, cfg Config, f *Facts) (err error) {
	f.CloudInit, err = cloudinit.Read(cfg.Paths)
	return err
}

// identityProbe fills facts.identity from local sources; derive adds IMDS's answer.
type identityProbe struct{}

func (identityProbe) Name() string { return "identity" }

func (identityProbe) Gather(_ context.Context, cfg Config, f *Facts) error {
	f.Identity = identity.Read(identityConfig(cfg))
	return nil
}

func identityConfig(cfg Config) identity.Config {
	return identity.Config{Paths: cfg.Paths, Getenv: os.Getenv, PolicyRegion: cfg.EC2.Region, PolicyInstanceID: cfg.EC2.InstanceID}
}

// ec2Probe fills facts.ec2, only when the policy allows EC2 API calls. It runs beside the
// IMDS probe, so it finds the instance from the local sources itself.
type ec2Probe struct{}

func (ec2Probe) Name() string { return "ec2" }

// errEC2NotAllowed leaves facts.ec2 null: the rules that read it use try().
var errEC2NotAllowed = errors.New("not gathered: settings.allow.ec2_api is false")

func (ec2Probe) Gather(ctx context.Context, cfg Config, f *Facts) (err error) {
	if !cfg.EC2.Allowed {
		return errEC2NotAllowed
	}
	f.EC2, err = ec2.Gather(ctx, ec2.Config{Paths: cfg.Paths, Identity: identity.Read(identityConfig(cfg)),
		RoleARN: cfg.EC2.RoleARN, CacheFor: cfg.EC2.CacheFor, Now: time.Now()})
	return err
}

// derive completes the sections that combine others, once every probe is in.
func (f *Facts) derive() {
	if f.Identity != nil && f.IMDS != nil && f.IMDS.InstanceID != "" {
		f.Identity.AddIMDS(f.IMDS.InstanceID)
	}
}

// containersProbe fills facts.containers.
type containersProbe struct{}

func (containersProbe) Name() string { return "containers" }

func (containersProbe) Gather(ctx context.Context, cfg Config, f *Facts) (err error) {
	f.Containers, err = containers.Gather(ctx, containers.Config{Paths: cfg.Paths, IMDS: cfg.IMDS})
	return err
}
