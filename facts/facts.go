// Package facts holds the read-only probes that gather what imdsmend knows about the
// instance. Each probe fills one section of Facts; a probe that fails leaves its section nil,
// which policy expressions see as null, so only the rules that need it become unknown.
package facts

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Facts is everything the probes found. Its shape is the `facts` variable of the policy;
// the cty and doc tags drive the policy's type, `imdsmend facts` and docs/facts.md.
type Facts struct {
	IMDS     *IMDS     `cty:"imds" json:"imds" doc:"IMDS probe over IPv4 (or the endpoint AWS_EC2_METADATA_SERVICE_ENDPOINT names)."`
	IMDSv6   *IMDS     `cty:"imds_ipv6" json:"imds_ipv6" doc:"IMDS probe over IPv6 ([fd00:ec2::254]); null unless settings.ipv6 is true."`
	Firewall *Firewall `cty:"firewall" json:"firewall" doc:"iptables, ip6tables and nftables rules that output traffic to IMDS meets."`
	Proxy    *Proxy    `cty:"proxy" json:"proxy" doc:"Proxy settings that could carry IMDS requests away from the instance."`
	Route    *Route    `cty:"route" json:"route" doc:"The route the kernel uses to reach 169.254.169.254."`
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
	// Root prefixes every file a probe reads ("/" in production).
	Root string
	// IMDSEndpoint is the IPv4 (or overridden) IMDS base URL.
	IMDSEndpoint string
	// IMDSv6Endpoint is the IPv6 IMDS base URL, probed only when IPv6 is set.
	IMDSv6Endpoint string
	IPv6           bool
	// IMDS bounds the IMDS client.
	IMDS IMDSTimeouts
	// Timeout bounds each probe as a whole.
	Timeout time.Duration
}

// Default IMDS endpoints, as the AWS SDKs use them.
const (
	DefaultIMDSEndpoint   = "http://169.254.169.254"
	DefaultIMDSv6Endpoint = "http://[fd00:ec2::254]"
	// EndpointEnv overrides the IMDS endpoint, as in the AWS SDKs.
	EndpointEnv = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
)

// Probe gathers one section of Facts. Gather must honour ctx and must only write its own
// section of f.
type Probe interface {
	Name() string
	Gather(ctx context.Context, cfg Config, f *Facts) error
}

// Gather runs the probes concurrently, each bounded by cfg.Timeout and by ctx's deadline
// less a reserve, and records how each
// went in f.Probes. It never fails as a whole: a failing probe leaves its section nil.
func Gather(ctx context.Context, cfg Config, probes []Probe) *Facts {
	f := &Facts{Probes: make(map[string]ProbeResult, len(probes))}
	type result struct {
		name string
		res  ProbeResult
	}
	results := make(chan result, len(probes))
	var wg sync.WaitGroup
	for _, p := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			pctx, cancel := context.WithDeadline(ctx, probeDeadline(ctx, cfg.Timeout, start))
			defer cancel()
			err := runProbe(pctx, p, cfg, f)
			r := ProbeResult{OK: err == nil, DurationMS: ms(time.Since(start))}
			if err != nil {
				r.Error = err.Error()
			}
			results <- result{p.Name(), r}
		}()
	}
	wg.Wait()
	close(results)
	for r := range results {
		f.Probes[r.name] = r.res
	}
	return f
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
