package imds

import (
	"context"
	"net"
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/imdsmend/imdsmend/internal/types"
)

// Request is one of the single requests Send makes.
type Request int

const (
	// TokenPUT asks for a token: PUT /latest/api/token.
	TokenPUT Request = iota
	// TokenlessGET lists the metadata without a token: GET /latest/meta-data/. IMDS
	// answers 401 when tokens are required, 200 when they are optional.
	TokenlessGET
)

// The path TokenlessGET reads: the listing, which every IMDS serves.
const listingPath = "/latest/meta-data/"

// The token TokenPUT asks for is never used: the shortest life IMDS grants.
const sendTokenTTL = "1"

// Reply is how one request Send made ended.
type Reply struct {
	Sent      bool            // false when ctx or the process's request budget stopped it first
	Status    int             // the HTTP status; 0 when no reply came
	Class     types.IMDSClass // types.ClassOK for a usable 2xx reply
	LatencyMS float64         // from sending to the end of the reply, or of the wait for it
	Error     string          // why the reply is not usable; empty when it is
}

// TimedOut says the request went out and no reply came within the bound.
func (r Reply) TimedOut() bool {
	return r.Sent && r.Status == 0 && r.Class == types.ClassTimeout
}

// Dial opens the connections of Send's request, e.g. from inside another network
// namespace.
type Dial func(ctx context.Context, network, addr string) (net.Conn, error)

// Send makes req once, to cfg.Endpoint: no retry, no token kept, the connection closed
// after, through a client built as the probe's (never a proxy, no redirects, the reply
// bounded by Connect+Header and imdsMaxBody) whose connections dial opens. Like every IMDS
// request of the process it waits on cfg.Budget (nil: Budget); one the budget stops is not
// sent. Only a malformed endpoint fails.
func Send(ctx context.Context, cfg Config, dial Dial, req Request) (Reply, error) {
	t := cfg.Timeouts.withDefaults()
	budget := cfg.Budget
	if budget == nil {
		budget = Budget
	}
	// The budget is waited on here, where a refusal can be told from a timeout.
	c, err := newIMDSClient(cfg.Endpoint, t, rate.NewLimiter(rate.Inf, 0))
	if err != nil {
		return Reply{}, err
	}
	c.tr.DisableKeepAlives = true
	c.tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, t.Connect)
		defer cancel()
		return dial(ctx, network, addr)
	}
	defer c.tr.CloseIdleConnections()
	if err := ctx.Err(); err != nil {
		return Reply{Class: types.ClassTimeout, Error: "not sent: " + err.Error()}, nil
	}
	if err := budget.Wait(ctx); err != nil {
		return Reply{Class: types.ClassTimeout, Error: budgetSpent(budget, err).Error()}, nil
	}
	method, path, hdr, check := http.MethodGet, listingPath, http.Header(nil), func([]byte) error { return nil }
	if req == TokenPUT {
		method, path, hdr, check = http.MethodPut, imdsTokenPath, http.Header{imdsTTLHeader: {sendTokenTTL}}, imdsCheckToken
	}
	start := time.Now()
	o := c.once(ctx, method, path, hdr, check)
	r := Reply{Sent: true, Status: o.status, Class: o.class, LatencyMS: float64(time.Since(start).Microseconds()) / 1000}
	if o.class != types.ClassOK {
		r.Error = o.describe()
	}
	return r, nil
}
