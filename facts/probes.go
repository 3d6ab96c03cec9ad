package facts

import (
	"context"
	"time"

	"github.com/imdsmend/imdsmend/facts/callers"
	"github.com/imdsmend/imdsmend/facts/cloudinit"
	"github.com/imdsmend/imdsmend/facts/containers"
	"github.com/imdsmend/imdsmend/facts/firewall"
	"github.com/imdsmend/imdsmend/facts/imds"
	"github.com/imdsmend/imdsmend/facts/nic"
	"github.com/imdsmend/imdsmend/facts/proxy"
	"github.com/imdsmend/imdsmend/facts/route"
)

// DefaultProbes are the probes every run gathers, in no particular order (they run
// concurrently).
func DefaultProbes() []Probe {
	return []Probe{imdsProbe{}, firewallProbe{new(firewall.Memo)}, routeProbe{}, proxyProbe{}, nicProbe{}, callersProbe{}, cloudInitProbe{}, containersProbe{}}
}

// Names of the probes a watch pass can re-gather on its own (events.Trigger.Sections).
const (
	ProbeIMDS     = "imds"
	ProbeFirewall = "firewall"
	ProbeRoute    = "route"
	ProbeProxy    = "proxy"
)

// The probes adapt each source package's reader to Probe: the source packages know
// nothing of Facts or Config, so they import no hub and each other only for shared
// lookups (firewall asks route which way IMDS traffic leaves).

// imdsProbe fills facts.imds (and facts.imds_ipv6 when cfg.IPv6 is set).
type imdsProbe struct{}

func (imdsProbe) Name() string { return ProbeIMDS }

func (imdsProbe) Gather(ctx context.Context, cfg Config, f *Facts) error {
	v4, v6, err := imds.Gather(ctx, cfg.IMDS, cfg.IPv6)
	f.IMDS, f.IMDSv6 = v4, v6
	return err
}

// firewallProbe fills facts.firewall; memo keeps the previous read for when the ruleset
// has not changed since (the watch's passes).
type firewallProbe struct{ memo *firewall.Memo }

func (firewallProbe) Name() string { return ProbeFirewall }

func (p firewallProbe) Gather(ctx context.Context, cfg Config, f *Facts) (err error) {
	f.Firewall, err = p.memo.Read(ctx, firewall.Config{Paths: cfg.Paths, IPv6: cfg.IPv6})
	return err
}

// routeProbe fills facts.route.
type routeProbe struct{}

func (routeProbe) Name() string { return ProbeRoute }

func (routeProbe) Gather(_ context.Context, _ Config, f *Facts) (err error) {
	f.Route, err = route.Read()
	return err
}

// proxyProbe fills facts.proxy.
type proxyProbe struct{}

func (proxyProbe) Name() string { return ProbeProxy }

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

// containersProbe fills facts.containers.
type containersProbe struct{}

func (containersProbe) Name() string { return "containers" }

func (containersProbe) Gather(ctx context.Context, cfg Config, f *Facts) (err error) {
	f.Containers, err = containers.Gather(ctx, containers.Config{Paths: cfg.Paths, IMDS: cfg.IMDS})
	return err
}
