package facts

import (
	"context"
	"errors"
	"time"
)

// IMDS is what one probe of the metadata service found. Its JSON form is the report's `imds`
// object (DESIGN.md); fields may be added, never renamed.
type IMDS struct {
	Endpoint    string  `cty:"endpoint" json:"endpoint" doc:"Base URL probed, e.g. http://169.254.169.254."`
	Reachable   bool    `cty:"reachable" json:"reachable" doc:"A metadata GET succeeded (with a token, or without one for v1)."`
	Version     string  `cty:"version" json:"version" doc:"\"v2\" (token PUT worked), \"v1\" (token refused, tokenless GET worked) or \"\" when unreachable."`
	Class       string  `cty:"class" json:"class" doc:"ok, connection_refused, timeout, no_route, http_400, http_401, http_403, http_404, http_429, http_5xx, proxy or bad_response."`
	Status      int     `cty:"status" json:"status" doc:"HTTP status of the last response, 0 when none arrived."`
	TokenStatus int     `cty:"token_status" json:"token_status" doc:"HTTP status of the token PUT, 0 when none arrived."`
	Stage       string  `cty:"stage" json:"stage" doc:"Where the probe stopped: \"token\" (the PUT) or \"get\" (the metadata GET)."`
	LatencyMS   float64 `cty:"latency_ms" json:"latency_ms" doc:"Wall time of the whole probe in milliseconds, retries included."`
	Attempts    int     `cty:"attempts" json:"attempts" doc:"HTTP requests sent, retries included."`
	Error       string  `cty:"error" json:"error,omitempty" doc:"The last error in words; never contains a token."`
}

// IMDSTimeouts bounds the IMDS client. Zero values take the defaults.
type IMDSTimeouts struct {
	Connect     time.Duration // TCP connect
	Header      time.Duration // response headers after the request is sent
	Total       time.Duration // the whole probe, retries included
	MaxAttempts int           // per request, first try included
}

// IMDSProbe probes the metadata service. (Implementation in progress.)
type IMDSProbe struct{}

// Name implements Probe.
func (IMDSProbe) Name() string { return "imds" }

// Gather implements Probe.
func (IMDSProbe) Gather(ctx context.Context, cfg Config, f *Facts) error {
	return errors.New("imds probe not implemented yet")
}
