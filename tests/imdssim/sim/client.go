package sim

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/imdsmend/imdsmend/tests/simkit"
)

// AdminClient talks to a simulator's admin listener over a unix socket, which is reachable
// from the host even when the simulator runs inside a network namespace.
type AdminClient struct{ c *simkit.AdminClient }

// NewAdminClient returns a client for the admin socket at path.
func NewAdminClient(path string) *AdminClient {
	return &AdminClient{simkit.NewAdminClient("imdssim", "unix:"+path)}
}

// Stats reads the counters.
func (c *AdminClient) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	return st, c.c.Do(ctx, http.MethodGet, AdminStats, nil, &st)
}

// Reset zeroes the counters.
func (c *AdminClient) Reset(ctx context.Context) error {
	return c.c.Do(ctx, http.MethodPost, AdminReset, url.Values{}, nil)
}

// SetConfig changes the fault (and its rate and delay).
func (c *AdminClient) SetConfig(ctx context.Context, cfg Config) error {
	form := url.Values{"fault": {string(cfg.Fault)}, "rate": {strconv.FormatFloat(cfg.Rate, 'g', -1, 64)}}
	if cfg.Delay > 0 {
		form.Set("delay", cfg.Delay.String())
	}
	return c.c.Do(ctx, http.MethodPost, AdminConfig, form, nil)
}
