// Package facts is the hub of the read-only probes that gather what imdsmend knows about
// the instance. Each source has a package of its own (facts/imds, facts/firewall,
// facts/proxy, facts/route) holding its section's struct and the function that reads it;
// this package assembles the sections into Facts, runs the probes (Gather), derives the
// policy's schema from the structs and knows which probes need privileges. Each probe
// fills one section of Facts; a probe that fails leaves its section nil, which policy
// expressions see as null, so only the rules that need it become unknown.
package facts

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
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
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/internal/types"
)

// Facts is everything the probes found. Its shape is the `facts` variable of the policy;
// the cty and doc tags drive the policy's type, `imdsmend facts` and docs/facts.md.
type Facts struct {
	IMDS      *types.IMDS          `cty:"imds" json:"imds" doc:"IMDS probe over IPv4 (or the endpoint AWS_EC2_METADATA_SERVICE_ENDPOINT names)."`
	IMDSv6    *types.IMDS          `cty:"imds_ipv6" json:"imds_ipv6" doc:"IMDS probe over IPv6 ([fd00:ec2::254]); null unless settings.ipv6 is true."`
	Firewall  *firewall.Firewall   `cty:"firewall" json:"firewall" doc:"iptables, ip6tables and nftables rules that output traffic to IMDS meets."`
	Proxy     *proxy.Proxy         `cty:"proxy" json:"proxy" doc:"Proxy settings that could carry IMDS requests away from the instance."`
	Route     *route.Route         `cty:"route" json:"route" doc:"The route the kernel uses to reach 169.254.169.254."`
	NIC       *nic.NIC             `cty:"nic" json:"nic" doc:"The ENA driver's allowance counters (ethtool -S) and how much they rose since the previous run."`
	Callers   *callers.Callers     `cty:"callers" json:"callers" doc:"The processes holding TCP connections to IMDS, sampled from /proc a few times over a short window."`
	CloudInit *cloudinit.CloudInit `cty:"cloud_init" json:"cloud_init" doc:"How this boot's cloud-init went (/run/cloud-init): the datasource it ended on, its errors, and whether Ec2 was configured."`
	// Measured from inside each container's network namespace.
	Containers *containers.Containers `cty:"containers" json:"containers" doc:"Running containers with a network namespace of their own behind this one, and what IMDS answered inside each (the hop-limit fingerprint)."`
	Identity   *identity.Identity     `cty:"identity" json:"identity" doc:"The instance ID and region found without IMDS (DMI asset tag, cloud-init, dnf/yum vars, AWS_REGION, the policy) and from IMDS when it answered, each with its source."`
	EC2        *ec2.EC2               `cty:"ec2" json:"ec2" doc:"The instance's metadata options and the account's defaults through the EC2 API; null unless settings.allow.ec2_api is true."`
	// Probes says how each probe went; a failed probe's section is null.
	Probes map[string]ProbeResult `cty:"probes" json:"probes" doc:"Per probe: whether it ran and why it failed."`
}

// ProbeResult records how a probe went.
type ProbeResult struct {
	OK         bool    `cty:"ok" json:"ok" doc:"The probe completed and its section is filled."`
	Error      string  `cty:"error" json:"error" doc:"Why the probe failed; empty when ok."`
	DurationMS float64 `cty:"duration_ms" json:"duration_ms" doc:"How long the probe took, in milliseconds."`
}

// Config tells probes where and how to look.
type Config struct {
	// Paths locates every file a probe reads (Root is "/" in production).
	Paths paths.Paths
	// IMDS is where the metadata service is and how long to wait for it.
	IMDS imds.Config
	// IPv6 probes IMDS over IPv6 too and counts what blocks IPv6 IMDS traffic.
	IPv6 bool
	// Timeout bounds each probe as a whole.
	Timeout time.Duration
	// Missing are the privileges the process lacks (MissingPrivileges): their probes are
	// not run.
	Missing []Privilege
	// EC2 is what the identity and ec2 probes take from the policy.
	EC2 EC2Config
}

// EC2Config is settings.allow.ec2_api and settings.ec2.
type EC2Config struct {
	// Allowed is settings.allow.ec2_api: without it the ec2 probe calls nothing.
	Allowed    bool
	Region     string
	InstanceID string
	RoleARN    string
	// CacheFor is how long an API answer kept in state.json stands in for a call.
	CacheFor time.Duration
}

// Probe gathers one section of Facts. Gather must honour ctx (facts.Gather leaves a probe
// that does not behind) and must only write its own section of f.
type Probe interface {
	Name() string
	Gather(ctx context.Context, cfg Config, f *Facts) error
}

// Gather runs the probes concurrently, each bounded by cfg.Timeout and by ctx's deadline
// less a reserve, and records how each went in f.Probes. It never fails as a whole: a
// failing probe leaves its section nil. Nor does it wait for a probe without bound: some
// reads can't be cancelled (reading /proc/PID/environ blocks while that process's memory
// map is locked, as when it hangs on NFS), so a probe still running probeGrace after its
// bound is reported as failed and left behind. Each probe fills a Facts of its own, which
// is merged only when it returns in time, so what a late probe writes reaches nobody.
func Gather(ctx context.Context, cfg Config, probes []Probe) *Facts {
	f := &Facts{Probes: make(map[string]ProbeResult, len(probes))}
	defer f.derive()
	type result struct {
		name    string
		res     ProbeResult
		section *Facts
	}
	start := time.Now()
	deadline := probeDeadline(ctx, cfg.Timeout, start)
	results := make(chan result, len(probes)) // buffered: a late probe never blocks
	for _, p := range probes {
		go func() {
			for _, m := range cfg.Missing {
				if m.Probe == p.Name() {
					results <- result{p.Name(), ProbeResult{Error: m.Reason()}, &Facts{}}
					return
				}
			}
			pctx, cancel := context.WithDeadline(ctx, deadline)
			defer cancel()
			own := &Facts{}
			err := runProbe(pctx, p, cfg, own)
			r := ProbeResult{OK: err == nil, DurationMS: ms(time.Since(start))}
			if err != nil {
				r.Error = err.Error()
			}
			results <- result{p.Name(), r, own}
		}()
	}
	giveUpAt := deadline.Add(probeGrace)
	giveUp := time.NewTimer(time.Until(giveUpAt))
	defer giveUp.Stop()
	cancelled := ctx.Done()
	for pending := len(probes); pending > 0; {
		select {
		case r := <-results:
			f.Probes[r.name] = r.res
			f.merge(r.section)
			pending--
		case <-cancelled:
			// The probes are cancelled too: they get the grace to return, no more.
			cancelled = nil
			if at := time.Now().Add(probeGrace); at.Before(giveUpAt) {
				giveUpAt = at
				giveUp.Reset(probeGrace)
			}
		case <-giveUp.C:
			for _, p := range probes {
				if _, done := f.Probes[p.Name()]; !done {
					f.Probes[p.Name()] = ProbeResult{DurationMS: ms(time.Since(start)),
						Error: fmt.Sprintf("still running %s past its time bound (a read the kernel does not cancel?); left behind", probeGrace)}
				}
			}
			return f
		}
	}
	return f
}

// GatherAgain runs only the probes named in sections and takes every other section, and
// how its probe went, from prev: a watch pass woken by a change re-reads what that change
// can have touched. A probe prev has no result for runs too. A probe fills the section
// named as it is (cty) and that section's "_ipv6" twin.
func GatherAgain(ctx context.Context, cfg Config, probes []Probe, sections []string, prev *Facts) *Facts {
	var run []Probe
	for _, p := range probes {
		if _, had := prev.Probes[p.Name()]; !had || slices.Contains(sections, p.Name()) {
			run = append(run, p)
		}
	}
	f := Gather(ctx, cfg, run)
	dst, src := reflect.ValueOf(f).Elem(), reflect.ValueOf(prev).Elem()
	for i := range src.NumField() {
		probe := strings.TrimSuffix(strings.Split(src.Type().Field(i).Tag.Get("cty"), ",")[0], "_ipv6")
		if _, ran := f.Probes[probe]; !ran && src.Field(i).Kind() == reflect.Pointer {
			dst.Field(i).Set(src.Field(i))
		}
	}
	for name, r := range prev.Probes {
		if _, ran := f.Probes[name]; !ran {
			f.Probes[name] = r
		}
	}
	return f
}

// probeGrace is how long Gather waits for a probe past its bound: a probe that honours
// its context returns within milliseconds.
const probeGrace = 500 * time.Millisecond

// merge takes the sections a probe filled.
func (f *Facts) merge(section *Facts) {
	dst, src := reflect.ValueOf(f).Elem(), reflect.ValueOf(section).Elem()
	for i := range src.NumField() {
		if v := src.Field(i); v.Kind() == reflect.Pointer && !v.IsNil() {
			dst.Field(i).Set(v)
		}
	}
}

// A probe stops early by this share of the run's remaining time (at most
// reserveMax) so the run can still evaluate, fix and report before --timeout.
const (
	reserveShare = 4
	reserveMax   = 500 * time.Millisecond
)

// probeDeadline is a probe's bound: timeout from start, or earlier when the run's own
// deadline is nearer, keeping a reserve for the rest of the run.
func probeDeadline(ctx context.Context, timeout time.Duration, start time.Time) time.Time {
	var d time.Time
	if timeout > 0 {
		d = start.Add(timeout)
	}
	if run, ok := ctx.Deadline(); ok {
		early := run.Add(-min(run.Sub(start)/reserveShare, reserveMax))
		if d.IsZero() || early.Before(d) {
			d = early
		}
	}
	if d.IsZero() {
		// Neither bound is set: no deadline (a zero time is already in the past).
		return start.Add(24 * time.Hour)
	}
	return d
}

// runProbe turns a probe's panic into an error so one broken probe can't end the run.
func runProbe(ctx context.Context, p Probe, cfg Config, f *Facts) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("probe %s panicked: %v", p.Name(), r)
		}
	}()
	return p.Gather(ctx, cfg, f)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
