package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// AdminClient talks to a simulator's admin listener over a unix socket, which is reachable
// from the host even when the simulator runs inside a network namespace.
type AdminClient struct {
	http *http.Client
}

// NewAdminClient returns a client for the admin socket at path.
func NewAdminClient(path string) *AdminClient {
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}
	return &AdminClient{http: &http.Client{Transport: tr}}
}

// Stats reads the counters.
func (c *AdminClient) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	return st, c.do(ctx, http.MethodGet, AdminStats, nil, &st)
}

// Reset zeroes the counters.
func (c *AdminClient) Reset(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, AdminReset, url.Values{}, nil)
}

// SetConfig changes the fault (and its rate and delay).
func (c *AdminClient) SetConfig(ctx context.Context, cfg Config) error {
	form := url.Values{"fault": {string(cfg.Fault)}, "rate": {strconv.FormatFloat(cfg.Rate, 'g', -1, 64)}}
	if cfg.Delay > 0 {
		form.Set("delay", cfg.Delay.String())
	}
	return c.do(ctx, http.MethodPost, AdminConfig, form, nil)
}

func (c *AdminClient) do(ctx context.Context, method, path string, form url.Values, out any) error {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://imdssim"+path, body)
	if err != nil {
		return err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("imdssim admin %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("imdssim admin %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(msg)))
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("imdssim admin %s %s: decode: %w", method, path, err)
	}
	return nil
}
