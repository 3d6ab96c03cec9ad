package imds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/imdsmend/imdsmend/internal/types"
)

// Timeouts bounds the IMDS client. Zero values take the defaults.
type Timeouts struct {
	Connect     time.Duration // TCP connect
	Header      time.Duration // response headers after the request is sent
	Total       time.Duration // the whole probe, retries included
	MaxAttempts int           // per request, first try included
}

// Defaults of Timeouts, close to the AWS SDKs' (dial 250 ms, 3 attempts) but with a
// whole-probe bound so a hanging IMDS never holds a run up.
const (
	DefaultConnect     = 250 * time.Millisecond
	DefaultHeader      = time.Second
	DefaultTotal       = 2 * time.Second
	DefaultMaxAttempts = 3
)

func (t Timeouts) withDefaults() Timeouts {
	if t.Connect <= 0 {
		t.Connect = DefaultConnect
	}
	if t.Header <= 0 {
		t.Header = DefaultHeader
	}
	if t.Total <= 0 {
		t.Total = DefaultTotal
	}
	if t.MaxAttempts <= 0 {
		t.MaxAttempts = DefaultMaxAttempts
	}
	return t
}

// IMDS wire constants.
const (
	imdsTokenPath   = "/latest/api/token"
	imdsGetPath     = "/latest/meta-data/instance-id"
	imdsTTLHeader   = "X-aws-ec2-metadata-token-ttl-seconds"
	imdsTokenHeader = "X-aws-ec2-metadata-token"
	// The token's life, as the AWS SDKs ask for it: the probes of one process (apply's
	// re-probe, watch passes) reuse it until imdsTokenRenew before it expires.
	imdsTokenTTL   = "21600"
	imdsTokenRenew = time.Minute
	// An idle keep-alive connection is kept this long for the next probe: long enough for
	// apply's re-probe and a burst of watch triggers, short enough that a firewall rule
	// matching only new connections is met on a fresh one within a pass or two.
	imdsIdleConn = 30 * time.Second
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

// Budget is the one limiter every IMDS request of this process waits on, first tries and
// retries alike, across probes, runs and watch passes: a token bucket of BudgetBurst
// requests, refilled at one request every BudgetEvery. It covers the worst single run
// (apply with IPv6: two probes of two endpoints, six requests each) and holds a watch loop
// whose triggers keep coming to 30 requests a minute; a healthy check takes 2, a later
// probe of the same process 1 (the token is reused).
var Budget = rate.NewLimiter(rate.Every(BudgetEvery), BudgetBurst)

// The budget's size (docs/operating.md derives the worst case per mode from it).
const (
	BudgetBurst = 24
	BudgetEvery = 2 * time.Second
)

// Default endpoints, as the AWS SDKs use them.
const (
	DefaultEndpoint   = "http://169.254.169.254"
	DefaultV6Endpoint = "http://[fd00:ec2::254]"
	// EndpointEnv overrides the IPv4 endpoint, as in the AWS SDKs.
	EndpointEnv = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
)

// Config says where the metadata service is and how long to wait for it.
type Config struct {
	// Endpoint is the IPv4 (or overridden) base URL.
	Endpoint string
	// V6Endpoint is the IPv6 base URL, probed only when Gather is asked for IPv6.
	V6Endpoint string
	Timeouts   Timeouts
	// Budget limits the requests; nil takes the process's Budget.
	Budget *rate.Limiter
}

// Gather probes the metadata service over IPv4 and, when ipv6 is set, over IPv6 at the
// same time: a token PUT and a metadata GET over one keep-alive connection, never through
// a proxy, bounded in time and retried with backoff. An unreachable IMDS is a fact, not an
// error; only a malformed endpoint fails. v6 is nil unless ipv6 is set.
func Gather(ctx context.Context, cfg Config, ipv6 bool) (v4, v6 *types.IMDS, err error) {
	t := cfg.Timeouts.withDefaults()
	budget := cfg.Budget
	if budget == nil {
		budget = Budget
	}
	c4, err := sharedClient(cfg.Endpoint, 0, t, budget)
	if err != nil {
		return nil, nil, err
	}
	if !ipv6 {
		return c4.probeMediated(ctx), nil, nil
	}
	c6, err := sharedClient(cfg.V6Endpoint, 0, t, budget)
	if err != nil {
		return nil, nil, err
	}
	var wg sync.WaitGroup
	wg.Go(func() { v6 = c6.probeMediated(ctx) })
	v4 = c4.probeMediated(ctx)
	wg.Wait()
	return v4, v6, nil
}

// imdsClient probes one endpoint. Its transport holds at most one idle connection, so the
// GET reuses the PUT's connection, and the next probe reuses it too while it is idle for
// less than imdsIdleConn.
type imdsClient struct {
	base   string
	t      Timeouts
	tr     *http.Transport
	client *http.Client
	budget *rate.Limiter

	// The IMDSv2 token this client last got, kept only here (never in facts, reports or
	// the ledger), with the status of the PUT that got it and when to stop using it.
	mu          sync.Mutex
	token       string
	tokenStatus int
	tokenUntil  time.Time
}

// clients are the process's IMDS clients, one per endpoint and socket mark, so every
// probe of the process shares one token and one keep-alive connection per endpoint.
var clients = struct {
	sync.Mutex
	m map[clientKey]*imdsClient
}{m: map[clientKey]*imdsClient{}}

type clientKey struct {
	endpoint string
	mark     int // SO_MARK of the client's sockets, 0 for none
}

// sharedClient is the process's client for endpoint and mark; one with other timeouts or
// another budget (a reloaded policy) replaces it.
func sharedClient(endpoint string, mark int, t Timeouts, budget *rate.Limiter) (*imdsClient, error) {
	clients.Lock()
	defer clients.Unlock()
	k := clientKey{endpoint, mark}
	old := clients.m[k]
	if old != nil && old.t == t && old.budget == budget {
		return old, nil
	}
	c, err := newIMDSClient(endpoint, t, budget)
	if err != nil {
		return nil, err
	}
	if mark != 0 {
		dialer := &net.Dialer{Timeout: t.Connect, Control: socketControl(mark)}
		c.tr.DialContext = dialer.DialContext
	}
	if old != nil {
		old.tr.CloseIdleConnections()
	}
	clients.m[k] = c
	return c, nil
}

func newIMDSClient(endpoint string, t Timeouts, budget *rate.Limiter) (*imdsClient, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		shown := endpoint
		if err == nil {
			shown = u.Redacted()
		}
		return nil, fmt.Errorf("IMDS endpoint %q is not an http:// URL such as %s; fix %s", shown, DefaultEndpoint, EndpointEnv)
	}
	dialer := &net.Dialer{Timeout: t.Connect, Control: socketControl(0)}
	tr := &http.Transport{
		// Never a proxy: IMDS must be reached directly, and a proxy would carry the
		// instance's credentials off the host.
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		TLSHandshakeTimeout:    t.Header,
		ResponseHeaderTimeout:  t.Header,
		MaxIdleConnsPerHost:    1,
		IdleConnTimeout:        imdsIdleConn,
		MaxResponseHeaderBytes: imdsMaxBody,
		DisableCompression:     true,
	}
	return &imdsClient{
		base:   strings.TrimSuffix(u.String(), "/"),
		t:      t,
		tr:     tr,
		client: &http.Client{Transport: tr, CheckRedirect: imdsNoRedirects},
		budget: budget,
	}, nil
}

// IMDS never redirects; a redirect means something else answered.
func imdsNoRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// probe runs the token PUT and the metadata GET, falling back to a tokenless GET (IMDSv1)
// when the PUT is refused the way v1-only services refuse it. A token kept from an earlier
// probe saves the PUT; a GET it does not open except for throttling or a timeout (a 401
// after the token expired or IMDS restarted, or any refusal a fresh probe may tell apart
// at the token step) drops it, and the probe starts again once with a fresh one.
func (c *imdsClient) probe(ctx context.Context) *types.IMDS {
	start := time.Now()
	// Gather has already shortened ctx to leave the run room to report.
	ctx, cancel := context.WithTimeout(ctx, c.t.Total)
	defer cancel()

	res := &types.IMDS{Endpoint: c.base}
	if tok, status, ok := c.keptToken(); ok {
		get := c.do(ctx, res, http.MethodGet, imdsGetPath, http.Header{imdsTokenHeader: {tok}}, imdsCheckInstanceID)
		if get.class == types.ClassOK || imdsRetryable(get.class) {
			res.TokenStatus = status
			finish(res, types.StageGet, get, types.VersionV2)
			res.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
			return res
		}
		c.dropToken()
		// The new answer replaces the failed one; the GET still counts as sent.
		*res = types.IMDS{Endpoint: c.base, Attempts: res.Attempts}
	}
	sent := time.Now()
	put := c.do(ctx, res, http.MethodPut, imdsTokenPath, http.Header{imdsTTLHeader: {imdsTokenTTL}}, imdsCheckToken)
	res.TokenStatus = put.status
	switch {
	case put.class == types.ClassOK:
		tok := string(put.body)
		get := c.do(ctx, res, http.MethodGet, imdsGetPath, http.Header{imdsTokenHeader: {tok}}, imdsCheckInstanceID)
		finish(res, types.StageGet, get, types.VersionV2)
		if get.class == types.ClassOK {
			c.keepToken(tok, put, sent)
		}
	case put.refusesTokens():
		get := c.do(ctx, res, http.MethodGet, imdsGetPath, nil, imdsCheckInstanceID)
		if get.class == types.ClassOK {
			finish(res, types.StageGet, get, types.VersionV1)
			break
		}
		// Neither v2 nor v1 works: the PUT's refusal is the diagnosis (a 403 there is
		// "endpoint disabled" as cloud-init reads it).
		finish(res, types.StageToken, put, "")
		res.Error += "; the tokenless GET failed too: " + get.describe()
	default:
		finish(res, types.StageToken, put, "")
	}
	res.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
	return res
}

// keptToken is the token to reuse, with the status of the PUT that got it; false when
// there is none or it expires within imdsTokenRenew.
func (c *imdsClient) keptToken() (string, int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == "" || !time.Now().Before(c.tokenUntil) {
		c.token = ""
		return "", 0, false
	}
	return c.token, c.tokenStatus, true
}

// keepToken keeps tok, got by put sent at sent, until imdsTokenRenew before the expiry its
// TTL echo gives; a token whose echo is no number of seconds is used once only.
func (c *imdsClient) keepToken(tok string, put imdsOutcome, sent time.Time) {
	ttl, err := strconv.Atoi(put.ttl)
	if err != nil || time.Duration(ttl)*time.Second <= imdsTokenRenew {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token, c.tokenStatus = tok, put.status
	c.tokenUntil = sent.Add(time.Duration(ttl)*time.Second - imdsTokenRenew)
}

func (c *imdsClient) dropToken() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token = ""
}

// imdsOutcome is how one request (with its retries) ended.
type imdsOutcome struct {
	method, path string
	status       int
	body         []byte
	ttl          string          // the token reply's TTL echo, in seconds
	class        types.IMDSClass // types.ClassOK when the reply is usable
	err          error           // why not, in words; never holds a token
	attempts     int
}

// refusesTokens is the v1-only answer to a token PUT (the AWS SDKs fall back on the same
// statuses).
func (o imdsOutcome) refusesTokens() bool {
	switch o.status {
	case http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
		return o.class != types.ClassProxy
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

// finish records on r how the probe ended: at stage, with o, as version when it worked.
func finish(r *types.IMDS, stage string, o imdsOutcome, version string) {
	r.Stage, r.Status, r.Class = stage, o.status, o.class
	if o.class != types.ClassOK {
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
func (c *imdsClient) do(ctx context.Context, res *types.IMDS, method, path string, hdr http.Header, check func([]byte) error) imdsOutcome {
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

func imdsRetryable(class types.IMDSClass) bool {
	return class == types.ClassTimeout || class == types.ClassHTTP429 || class == types.ClassHTTP5xx
}

// once sends one request; the whole exchange, body included, gets Connect+Header.
func (c *imdsClient) once(ctx context.Context, method, path string, hdr http.Header, check func([]byte) error) imdsOutcome {
	o := imdsOutcome{method: method, path: path}
	if ctx.Err() != nil {
		o.class, o.err = types.ClassTimeout, errors.New("no time left for another attempt")
		return o
	}
	// Wait returns at once when no token comes before ctx's deadline.
	if err := c.budget.Wait(ctx); err != nil {
		o.class, o.err = types.ClassTimeout, fmt.Errorf("not sent: imdsmend's own budget of IMDS requests (%d at once, then one every %s) is spent: %w", c.budget.Burst(), BudgetEvery, err)
		return o
	}
	actx, cancel := context.WithTimeout(ctx, c.t.Connect+c.t.Header)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, method, c.base+path, nil)
	if err != nil {
		o.class, o.err = types.ClassBadResponse, err
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
	if o.class == types.ClassOK {
		o.body, o.ttl = body, resp.Header.Get(imdsTTLHeader)
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
func imdsClassifyReply(method string, status int, header http.Header, body []byte, oversized bool, check func([]byte) error) (types.IMDSClass, error) {
	class := imdsStatusClass(status)
	var err error
	switch {
	case class != types.ClassOK:
		err = fmt.Errorf("HTTP %d %s", status, http.StatusText(status))
	case oversized:
		class, err = types.ClassBadResponse, fmt.Errorf("HTTP %d with a body over %d KiB", status, imdsMaxBody>>10)
	case method == http.MethodPut && header.Get(imdsTTLHeader) == "":
		// The AWS SDKs reject a token reply without the TTL echo, so their clients fail.
		class, err = types.ClassBadResponse, fmt.Errorf("HTTP %d but the token reply lacks the %s header AWS SDKs require", status, imdsTTLHeader)
	default:
		if cerr := check(body); cerr != nil {
			class, err = types.ClassBadResponse, fmt.Errorf("HTTP %d but %w", status, cerr)
		}
	}
	if class != types.ClassOK && imdsViaProxy(header) {
		class = types.ClassProxy
		err = fmt.Errorf("%w, from a proxy (%s)", err, imdsProxySign(header))
	}
	return class, err
}

// imdsStatusClass maps an HTTP status to its class; types.ClassOK for 2xx.
func imdsStatusClass(status int) types.IMDSClass {
	switch {
	case status >= 200 && status < 300:
		return types.ClassOK
	case status == http.StatusBadRequest:
		return types.ClassHTTP400
	case status == http.StatusUnauthorized:
		return types.ClassHTTP401
	case status == http.StatusForbidden:
		return types.ClassHTTP403
	case status == http.StatusNotFound:
		return types.ClassHTTP404
	case status == http.StatusProxyAuthRequired:
		return types.ClassProxy
	case status == http.StatusTooManyRequests:
		return types.ClassHTTP429
	case status >= 500 && status < 600:
		return types.ClassHTTP5xx
	}
	// Redirects, 405 and other statuses IMDS never sends for these requests.
	return types.ClassBadResponse
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
func imdsTransportClass(err error) types.IMDSClass {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.As(err, &ne) && ne.Timeout():
		return types.ClassTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPERM):
		// EPERM: a local firewall or cgroup program refused the connect.
		return types.ClassConnectionRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EADDRNOTAVAIL):
		// EACCES: a "prohibit" route (systemd-imdsd installs one on purpose).
		return types.ClassNoRoute
	}
	// A connection closed or reset mid-reply, or bytes that are not HTTP.
	return types.ClassBadResponse
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
