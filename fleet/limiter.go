package fleet

import (
	"context"
	"fmt"
	"sync/atomic"

	"golang.org/x/time/rate"
)

// Bucket is a token bucket: Burst requests at once, refilled at Rate per second — how
// EC2 meters each account's requests per region.
type Bucket struct {
	Rate  float64
	Burst int
}

// Rates are the client-side buckets imdsmend keeps per account and region, one for
// mutating calls (ModifyInstanceMetadataOptions, dry runs included) and one for the
// others. The defaults stay just under the buckets EC2 documents per action (mutating 200
// refilled at 5/s; non-mutating 100 at 20/s, and 50 at 10/s for calls without filter, IDs
// or page size), so a run alone in an account is not throttled; the SDK's adaptive retry
// handles the requests of others.
type Rates struct {
	Mutating, Read Bucket
}

// DefaultRates are EC2's default buckets, a little smaller.
var DefaultRates = Rates{Mutating: Bucket{Rate: 4.5, Burst: 180}, Read: Bucket{Rate: 9, Burst: 45}}

// Stats count one account and region's API calls.
type Stats struct {
	Calls atomic.Int64
}

// paced is a RegionAPI whose calls wait for their bucket.
type paced struct {
	api          RegionAPI
	read, mutate *rate.Limiter
	stats        *Stats
}

func newPaced(api RegionAPI, r Rates, stats *Stats) *paced {
	return &paced{
		api:    api,
		read:   rate.NewLimiter(rate.Limit(r.Read.Rate), max(r.Read.Burst, 1)),
		mutate: rate.NewLimiter(rate.Limit(r.Mutating.Rate), max(r.Mutating.Burst, 1)),
		stats:  stats,
	}
}

func (p *paced) wait(ctx context.Context, l *rate.Limiter) error {
	if err := l.Wait(ctx); err != nil {
		return fmt.Errorf("wait for the client-side request bucket: %w", err)
	}
	p.stats.Calls.Add(1)
	return nil
}

func (p *paced) DescribeInstances(ctx context.Context, in DescribeInput) (DescribePage, error) {
	if err := p.wait(ctx, p.read); err != nil {
		return DescribePage{}, err
	}
	return p.api.DescribeInstances(ctx, in)
}

func (p *paced) MetadataDefaults(ctx context.Context) (Defaults, error) {
	if err := p.wait(ctx, p.read); err != nil {
		return Defaults{}, err
	}
	return p.api.MetadataDefaults(ctx)
}

func (p *paced) ImageIMDSSupport(ctx context.Context, ids []string) (map[string]string, error) {
	if err := p.wait(ctx, p.read); err != nil {
		return nil, err
	}
	return p.api.ImageIMDSSupport(ctx, ids)
}

// Modify takes two mutating tokens, for the dry run and the call; the polls that follow
// are few and left to the SDK's retry.
func (p *paced) Modify(ctx context.Context, id string, set Set) (*Options, error) {
	for range 2 {
		if err := p.wait(ctx, p.mutate); err != nil {
			return nil, err
		}
	}
	return p.api.Modify(ctx, id, set)
}
