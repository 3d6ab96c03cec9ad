package facts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
)

// IMDS is what one probe of the metadata service found. Its JSON form is the report's `imds`
// object (DESIGN.md); fields may be added, never renamed.
type IMDS struct {
	Endpoint    string  `cty:"endpoint" json:"endpoint" doc:"Base URL probed, e.g. http://169.254.169.254."`
	Reachable   bool    `cty:"reachable" json:"reachable" doc:"A metadata GET succeeded (with a token, or without one for v1)."`
	Version     string  `cty:"version" json:"version" doc:"\"v2\" (token PUT worked), \"v1\" (token refused with 403/404/405, tokenless GET worked) or \"\" when unreachable."`
	Class       string  `cty:"class" json:"class" doc:"ok, connection_refused, timeout, no_route, http_400, http_401, http_403, http_404, http_429, http_5xx, proxy or bad_response."`
	Status      int     `cty:"status" json:"status" doc:"HTTP status of the last response at the stage that decided the class, 0 when none arrived."`
	TokenStatus int     `cty:"token_status" json:"token_status" doc:"HTTP status of the token PUT, 0 when none arrived."`
	Stage       string  `cty:"stage" json:"stage" doc:"Where the probe stopped: \"token\" (the PUT) or \"get\" (the metadata GET)."`
	LatencyMS   float64 `cty:"latency_ms" json:"latency_ms" doc:"Wall time of the whole probe in milliseconds, retries included."`
	Attempts    int     `cty:"attempts" json:"attempts" doc:"HTTP requests sent, retries included."`
	Error       string  `cty:"error" json:"error,omitempty" doc:"The last error in words; never contains a token."`
	InstanceID  string  `cty:"instance_id" json:"instance_id,omitempty" doc:"The instance ID IMDS returned; empty when unreachable."`
	MediatedBy  string  `cty:"mediated_by" json:"mediated_by" doc:"\"systemd-imdsd\" when a prohibit route stops direct requests on purpose and systemd-imdsd's fwmark 0x7FFF0815 policy rule routes the daemon's own (its \"locked\" mode); the other fields then describe the daemon's path when marked is true. Empty otherwise."`
	Marked      bool    `cty:"marked" json:"marked" doc:"The requests carried systemd-imdsd's fwmark (SO_MARK, which needs CAP_NET_ADMIN), so they took the daemon's own path to IMDS. False when IMDS is not mediated, or when this process may not mark its sockets and the daemon's path went untested."`
}

// IMDS error classes (DESIGN.md, imds.class).
const (
	ClassOK                = "ok"
	ClassConnectionRefused = "connection_refused"
	ClassTimeout           = "timeout"
	ClassNoRoute           = "no_route"
	ClassHTTP400           = "http_400"
	ClassHTTP401           = "http_401"
	ClassHTTP403           = "http_403"
	ClassHTTP404           = "http_404"
	ClassHTTP429           = "http_429"
	ClassHTTP5xx           = "http_5xx"
	ClassProxy             = "proxy"
	ClassBadResponse       = "bad_response"
)

// IMDSClasses lists every imds.class value.
func IMDSClasses() []string {
	return []string{
		ClassOK, ClassConnectionRefused, ClassTimeout, ClassNoRoute, ClassHTTP400, ClassHTTP401,
		ClassHTTP403, ClassHTTP404, ClassHTTP429, ClassHTTP5xx, ClassProxy, ClassBadResponse,
	}
}

// Probe stages (imds.stage).
const (
	StageToken = "token"
	StageGet   = "get"
)

// IMDS versions (imds.version).
const (
	VersionV1 = "v1"
	VersionV2 = "v2"
)

// IMDSTimeouts bounds the IMDS client. Zero values take the defaults.
type IMDSTimeouts struct {
	Connect     time.Duration // TCP connect
	Header      time.Duration // response headers after the request is sent
	Total       time.Duration // the whole probe, retries included
	MaxAttempts int           // per request, first try included
}

// Defaults of IMDSTimeouts, close to the AWS SDKs' (dial 250 ms, 3 attempts) but with a
// whole-probe bound so a hanging IMDS never holds a run up.
const (
	DefaultIMDSConnect     = 250 * time.Millisecond
	DefaultIMDSHeader      = time.Second
	DefaultIMDSTotal       = 2 * time.Second
	DefaultIMDSMaxAttempts = 3
)

func (t IMDSTimeouts) withDefaults() IMDSTimeouts {
	if t.Connect <= 0 {
		t.Connect = DefaultIMDSConnect
	}
	if t.Header <= 0 {
		t.Header = DefaultIMDSHeader
	}
	if t.Total <= 0 {
		t.Total = DefaultIMDSTotal
	}
	if t.MaxAttempts <= 0 {
		t.MaxAttempts = DefaultIMDSMaxAttempts
	}
	return t
}

// IMDS wire constants.
const (
	imdsTokenPath   = "/latest/api/token"
	imdsGetPath     = "/latest/meta-data/instance-id"
	imdsTTLHeader   = "X-aws-ec2-metadata-token-ttl-seconds"
	imdsTokenHeader = "X-aws-ec2-metadata-token"
	// The token only has to outlive this probe.
	imdsTokenTTL = "60"
	// Replies are read to at most this many bytes; IMDS's own answers are tiny.
	imdsMaxBody = 64 << 10
	// Longer than any token IMDS hands out (about 56 bytes), short enough for a header.
	imdsMaxToken = 4096
	// Longer than any instance ID (i- and 17 hex digits).
	imdsMaxInstanceID = 256
	imdsUserAgent     = "imdsmend"
	// Backoff before retry n is uniform in [0, min(cap, base·2^(n-1))) ("full jitter").
	imdsBackoffBase = 100 * time.Millisecond
	imdsBackoffCap  = time.Second
)

// IMDSProbe probes the metadata service: a token PUT and a metadata GET over one
// keep-alive connection, never through a proxy, bounded in time and retried with backoff.
type IMDSProbe struct{}

// Name implements Probe.
func (IMDSProbe) Name() string { return "imds" }

// Gather implements Probe. An unreachable IMDS is a fact, not an error; only a malformed
// endpoint fails the probe.
func (IMDSProbe) Gather(ctx context.Context, cfg Config, f *Facts) error {
	t := cfg.IMDS.withDefaults()
	v4, err := newIMDSClient(cfg.IMDSEndpoint, t)
	if err != nil {
		return err
	}
	if !cfg.IPv6 {
		f.IMDS = v4.probeMediated(ctx)
		return nil
	}
	v6, err := newIMDSClient(cfg.IMDSv6Endpoint, t)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Go(func() { f.IMDSv6 = v6.probeMediated(ctx) })
	f.IMDS = v4.probeMediated(ctx)
	wg.Wait()
	return nil
}

// imdsClient probes one endpoint. Its transport holds at most one idle connection, so the
// GET reuses the PUT's connection.
type imdsClient struct {
	base   string
	t      IMDSTimeouts
	tr     *http.Transport
	client *http.Client
}

func newIMDSClient(endpoint string, t IMDSTimeouts) (*imdsClient, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		shown := endpoint
		if err == nil {
			shown = u.Redacted()
		}
		return nil, fmt.Errorf("IMDS endpoint %q is not an http:// URL such as %s; fix %s", shown, DefaultIMDSEndpoint, EndpointEnv)
	}
	dialer := &net.Dialer{Timeout: t.Connect}
	tr := &http.Transport{
		// Never a proxy: IMDS must be reached directly, and a proxy would carry the
		// instance's credentials off the host.
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		TLSHandshakeTimeout:    t.Header,
		ResponseHeaderTimeout:  t.Header,
		MaxIdleConnsPerHost:    1,
		MaxResponseHeaderBytes: imdsMaxBody,
		DisableCompression:     true,
	}
	return &imdsClient{
		base:   strings.TrimSuffix(u.String(), "/"),
		t:      t,
		tr:     tr,
		client: &http.Client{Transport: tr, CheckRedirect: imdsNoRedirects},
	}, nil
}

// IMDS never redirects; a redirect means something else answered.
func imdsNoRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// probe runs the token PUT and the metadata GET, falling back to a tokenless GET (IMDSv1)
// when the PUT is refused the way v1-only services refuse it.
func (c *imdsClient) probe(ctx context.Context) *IMDS {
	start := time.Now()
	// Gather has already shortened ctx to leave the run room to report.
	ctx, cancel := context.WithTimeout(ctx, c.t.Total)
	defer cancel()
	defer c.tr.CloseIdleConnections()

	res := &IMDS{Endpoint: c.base}
	put := c.do(ctx, res, http.MethodPut, imdsTokenPath, http.Header{imdsTTLHeader: {imdsTokenTTL}}, imdsCheckToken)
	res.TokenStatus = put.status
	switch {
	case put.class == ClassOK:
		get := c.do(ctx, res, http.MethodGet, imdsGetPath, http.Header{imdsTokenHeader: {string(put.body)}}, imdsCheckInstanceID)
		res.finish(StageGet, get, VersionV2)
	case put.refusesTokens():
		get := c.do(ctx, res, http.MethodGet, imdsGetPath, nil, imdsCheckInstanceID)
		if get.class == ClassOK {
			res.finish(StageGet, get, VersionV1)
			break
		}
		// Neither v2 nor v1 works: the PUT's refusal is the diagnosis (a 403 there is
		// "endpoint disabled" as cloud-init reads it).
		res.finish(StageToken, put, "")
		res.Error += "; the tokenless GET failed too: " + get.describe()
	default:
		res.finish(StageToken, put, "")
	}
	res.LatencyMS = ms(time.Since(start))
	return res
}

// imdsOutcome is how one request (with its retries) ended.
type imdsOutcome struct {
	method, path string
	status       int
	body         []byte
	class        string // ClassOK when the reply is usable
	err          error  // why not, in words; never holds a token
	attempts     int
}

// refusesTokens is the v1-only answer to a token PUT (the AWS SDKs fall back on the same
// statuses).
func (o imdsOutcome) refusesTokens() bool {
	switch o.status {
	case http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
		return o.class != ClassProxy
	}
	return false
}

func (o imdsOutcome) describe() string {
	what := "token PUT"
	if o.method == http.MethodGet {
		what = "GET " + o.path
	}
	msg := fmt.Sprintf("%s: %v", what, o.err)
	if o.attempts > 1 {
		msg += fmt.Sprintf(" (after %d attempts)", o.attempts)
	}
	return msg
}

func (r *IMDS) finish(stage string, o imdsOutcome, version string) {
	r.Stage, r.Status, r.Class = stage, o.status, o.class
	if o.class != ClassOK {
		r.Error = o.describe()
		return
	}
	r.Reachable, r.Version = true, version
	if o.path == imdsGetPath {
		r.InstanceID = string(o.body)
	}
}

// do sends one request, retrying timeouts, 429 and 5xx with full-jitter exponential
// backoff, up to MaxAttempts and never past ctx's deadline.
func (c *imdsClient) do(ctx context.Context, res *IMDS, method, path string, hdr http.Header, check func([]byte) error) imdsOutcome {
	var o imdsOutcome
	for attempt := 1; ; attempt++ {
		res.Attempts++
		o = c.once(ctx, method, path, hdr, check)
		o.attempts = attempt
		if !imdsRetryable(o.class) || attempt >= c.t.MaxAttempts {
			return o
		}
		ceiling := min(imdsBackoffCap, imdsBackoffBase<<(attempt-1))
		wait := rand.N(ceiling)
		if dl, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(dl) {
			return o
		}
		select {
		case <-ctx.Done():
			return o
		case <-time.After(wait):
		}
	}
}

func imdsRetryable(class string) bool {
	return class == ClassTimeout || class == ClassHTTP429 || class == ClassHTTP5xx
}

// once sends one request; the whole exchange, body included, gets Connect+Header.
func (c *imdsClient) once(ctx context.Context, method, path string, hdr http.Header, check func([]byte) error) imdsOutcome {
	o := imdsOutcome{method: method, path: path}
	if ctx.Err() != nil {
		o.class, o.err = ClassTimeout, errors.New("no time left for another attempt")
		return o
	}
	actx, cancel := context.WithTimeout(ctx, c.t.Connect+c.t.Header)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, method, c.base+path, nil)
	if err != nil {
		o.class, o.err = ClassBadResponse, err
		return o
	}
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("User-Agent", imdsUserAgent)
	resp, err := c.client.Do(req)
	if err != nil {
		o.class, o.err = imdsTransportClass(err), imdsTransportError(err)
		return o
	}
	defer resp.Body.Close()
	o.status = resp.StatusCode
	body, err := imdsReadBody(resp.Body, resp.ContentLength)
	oversized := errors.Is(err, errIMDSBodyTooLarge)
	if err != nil && !oversized {
		o.class, o.err = imdsTransportClass(err), fmt.Errorf("HTTP %d, reading the body: %w", resp.StatusCode, imdsTransportError(err))
		return o
	}
	o.class, o.err = imdsClassifyReply(method, resp.StatusCode, resp.Header, body, oversized, check)
	if o.class == ClassOK {
		o.body = body
	}
	return o
}

var errIMDSBodyTooLarge = errors.New("body too large")

// imdsReadBody reads a body to EOF, refusing more than imdsMaxBody bytes (without reading
// at all when the announced length is already too long).
func imdsReadBody(r io.Reader, length int64) ([]byte, error) {
	if length > imdsMaxBody {
		return nil, errIMDSBodyTooLarge
	}
	b, err := io.ReadAll(io.LimitReader(r, imdsMaxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > imdsMaxBody {
		return nil, errIMDSBodyTooLarge
	}
	return b, nil
}

// imdsClassifyReply judges a complete reply: the status first, then (for 2xx) the TTL echo
// and the body, which check validates. The returned error never quotes the body, which may
// hold a token.
func imdsClassifyReply(method string, status int, header http.Header, body []byte, oversized bool, check func([]byte) error) (string, error) {
	class := imdsStatusClass(status)
	var err error
	switch {
	case class != ClassOK:
		err = fmt.Errorf("HTTP %d %s", status, http.StatusText(status))
	case oversized:
		class, err = ClassBadResponse, fmt.Errorf("HTTP %d with a body over %d KiB", status, imdsMaxBody>>10)
	case method == http.MethodPut && header.Get(imdsTTLHeader) == "":
		// The AWS SDKs reject a token reply without the TTL echo, so their clients fail.
		class, err = ClassBadResponse, fmt.Errorf("HTTP %d but the token reply lacks the %s header AWS SDKs require", status, imdsTTLHeader)
	default:
		if cerr := check(body); cerr != nil {
			class, err = ClassBadResponse, fmt.Errorf("HTTP %d but %w", status, cerr)
		}
	}
	if class != ClassOK && imdsViaProxy(header) {
		class = ClassProxy
		err = fmt.Errorf("%w, from a proxy (%s)", err, imdsProxySign(header))
	}
	return class, err
}

// imdsStatusClass maps an HTTP status to its class; ClassOK for 2xx.
func imdsStatusClass(status int) string {
	switch {
	case status >= 200 && status < 300:
		return ClassOK
	case status == http.StatusBadRequest:
		return ClassHTTP400
	case status == http.StatusUnauthorized:
		return ClassHTTP401
	case status == http.StatusForbidden:
		return ClassHTTP403
	case status == http.StatusNotFound:
		return ClassHTTP404
	case status == http.StatusProxyAuthRequired:
		return ClassProxy
	case status == http.StatusTooManyRequests:
		return ClassHTTP429
	case status >= 500 && status < 600:
		return ClassHTTP5xx
	}
	// Redirects, 405 and other statuses IMDS never sends for these requests.
	return ClassBadResponse
}

// imdsProxyHeaders are set by proxies, never by IMDS.
var imdsProxyHeaders = []string{"Proxy-Authenticate", "Via", "X-Squid-Error", "Proxy-Connection"}

func imdsViaProxy(h http.Header) bool { return imdsProxySign(h) != "" }

func imdsProxySign(h http.Header) string {
	for _, k := range imdsProxyHeaders {
		if h.Get(k) != "" {
			return k + " header"
		}
	}
	return ""
}

// The replies that must be one word of printable ASCII: the token, the instance ID.
var (
	imdsCheckToken      = imdsCheckWord("token", imdsMaxToken)
	imdsCheckInstanceID = imdsCheckWord("instance ID", imdsMaxInstanceID)
)

// imdsCheckWord accepts a non-empty word of printable ASCII of at most max bytes. Its
// errors give the length, never the bytes, which may be a token.
func imdsCheckWord(what string, max int) func([]byte) error {
	return func(b []byte) error {
		switch {
		case len(b) == 0:
			return fmt.Errorf("the %s is empty", what)
		case len(b) > max:
			return fmt.Errorf("the %s reply is %d bytes long, longer than any IMDS %s", what, len(b), what)
		case !imdsPrintableWord(b):
			return fmt.Errorf("the %s reply (%d bytes) is not one printable word", what, len(b))
		}
		return nil
	}
}

func imdsPrintableWord(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// imdsTransportClass maps a failure before or while reading a reply to its class.
func imdsTransportClass(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.As(err, &ne) && ne.Timeout():
		return ClassTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPERM):
		// EPERM: a local firewall or cgroup program refused the connect.
		return ClassConnectionRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EADDRNOTAVAIL):
		// EACCES: a "prohibit" route (systemd-imdsd installs one on purpose).
		return ClassNoRoute
	}
	// A connection closed or reset mid-reply, or bytes that are not HTTP.
	return ClassBadResponse
}

// imdsTransportError drops url.Error's method and URL, which describe() already names.
func imdsTransportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if err == context.DeadlineExceeded {
		return errors.New("no answer within the time bound")
	}
	return err
}
