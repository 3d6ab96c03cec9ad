package imds

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
)

// imdsFast keeps timeout cases short, with a Total that leaves room for every attempt so the
// attempt counts do not depend on the machine's speed. The header bound leaves a starved
// machine (two CPUs busy with fuzzing) time to answer a 429 (at 100 ms it once did not).
var imdsFast = Timeouts{Connect: 50 * time.Millisecond, Header: 250 * time.Millisecond, Total: 3 * time.Second}

// startIMDSSim serves the simulator on a loopback port for the test.
func startIMDSSim(t testing.TB, cfg sim.Config) (*sim.Server, string) {
	t.Helper()
	srv := sim.New(cfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return srv, "http://" + l.Addr().String()
}

func probeIMDS(t *testing.T, endpoint string, timeouts Timeouts) *types.IMDS {
	t.Helper()
	// Parallel tests' servers come and go: a later one may get a closed one's port, and must
	// not meet its token (registered after the server's Close, so this runs first).
	t.Cleanup(func() { forgetClients(endpoint) })
	v4, _, err := Gather(context.Background(), Config{Endpoint: endpoint, Timeouts: timeouts}, false)
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	if v4 == nil {
		t.Fatal("Gather left the IPv4 result nil")
	}
	return v4
}

// forgetClients drops the process's shared clients (and their tokens) for endpoint.
func forgetClients(endpoint string) {
	clients.Lock()
	defer clients.Unlock()
	for k, c := range clients.m {
		if k.endpoint == endpoint {
			c.tr.CloseIdleConnections()
			delete(clients.m, k)
		}
	}
}

// imdsIgnoreVolatile drops what differs between runs; each case asserts Error separately.
var imdsIgnoreVolatile = cmpopts.IgnoreFields(types.IMDS{}, "Endpoint", "LatencyMS", "Error")

func TestIMDSProbeSimulator(t *testing.T) {
	tests := []struct {
		name     string
		cfg      sim.Config
		want     types.IMDS
		errorHas string
	}{
		{"healthy v2", sim.Config{Fault: sim.FaultOK},
			types.IMDS{Reachable: true, Version: "v2", Class: "ok", Status: 200, TokenStatus: 200, Stage: "get", Attempts: 2, InstanceID: sim.InstanceID}, ""},
		{"v1 only", sim.Config{Fault: sim.FaultV1Only},
			types.IMDS{Reachable: true, Version: "v1", Class: "ok", Status: 200, TokenStatus: 403, Stage: "get", Attempts: 2, InstanceID: sim.InstanceID}, ""},
		{"endpoint disabled", sim.Config{Fault: sim.FaultDisabled},
			types.IMDS{Class: "http_403", Status: 403, TokenStatus: 403, Stage: "token", Attempts: 2}, "tokenless GET failed too"},
		{"throttled", sim.Config{Fault: sim.FaultThrottle},
			types.IMDS{Class: "http_429", Status: 429, TokenStatus: 429, Stage: "token", Attempts: 3}, "HTTP 429"},
		{"throttled after the token", sim.Config{Fault: sim.FaultThrottle, Rate: 1},
			types.IMDS{Class: "http_429", Status: 429, TokenStatus: 200, Stage: "get", Attempts: 4}, "after 3 attempts"},
		{"server error", sim.Config{Fault: sim.Fault500},
			types.IMDS{Class: "http_5xx", Status: 500, TokenStatus: 500, Stage: "token", Attempts: 3}, "HTTP 500"},
		{"hang", sim.Config{Fault: sim.FaultHang},
			types.IMDS{Class: "timeout", Stage: "token", Attempts: 3}, "timeout awaiting response headers"},
		{"slow within the header bound", sim.Config{Fault: sim.FaultSlow, Delay: 10 * time.Millisecond},
			types.IMDS{Reachable: true, Version: "v2", Class: "ok", Status: 200, TokenStatus: 200, Stage: "get", Attempts: 2, InstanceID: sim.InstanceID}, ""},
		{"slower than the header bound", sim.Config{Fault: sim.FaultSlow, Delay: time.Second},
			types.IMDS{Class: "timeout", Stage: "token", Attempts: 3}, "timeout awaiting response headers"},
		{"garbage body", sim.Config{Fault: sim.FaultGarbage},
			types.IMDS{Class: "bad_response", Status: 200, TokenStatus: 200, Stage: "get", Attempts: 2}, "longer than any IMDS instance ID"},
		{"oversized body", sim.Config{Fault: sim.FaultOversized},
			types.IMDS{Class: "bad_response", Status: 200, TokenStatus: 200, Stage: "get", Attempts: 2}, "over 64 KiB"},
		{"X-Forwarded-For rejected, never sent", sim.Config{Fault: sim.FaultXFF},
			types.IMDS{Reachable: true, Version: "v2", Class: "ok", Status: 200, TokenStatus: 200, Stage: "get", Attempts: 2, InstanceID: sim.InstanceID}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, endpoint := startIMDSSim(t, tt.cfg)
			got := probeIMDS(t, endpoint, imdsFast)
			if diff := cmp.Diff(tt.want, *got, imdsIgnoreVolatile); diff != "" {
				t.Errorf("probe (-want +got):\n%s\nerror: %s", diff, got.Error)
			}
			if got.Endpoint != endpoint {
				t.Errorf("endpoint = %q, want %q", got.Endpoint, endpoint)
			}
			if !strings.Contains(got.Error, tt.errorHas) {
				t.Errorf("error = %q, want it to mention %q", got.Error, tt.errorHas)
			}
			if tt.errorHas == "" && got.Error != "" {
				t.Errorf("error = %q on a healthy probe", got.Error)
			}
		})
	}
}

// A healthy probe costs IMDS two requests over one connection and never carries
// X-Forwarded-For.
func TestIMDSProbeLoad(t *testing.T) {
	srv, endpoint := startIMDSSim(t, sim.Config{Fault: sim.FaultOK})
	if got := probeIMDS(t, endpoint, Timeouts{}); got.Class != types.ClassOK {
		t.Fatalf("class = %s (%s), want ok", got.Class, got.Error)
	}
	want := sim.Stats{Requests: 2, Connections: 1, TokenPuts: 1, Gets: 1}
	if diff := cmp.Diff(want, srv.Stats()); diff != "" {
		t.Errorf("simulator stats (-want +got):\n%s", diff)
	}
}

// imdsExchange answers the token PUT and the GET separately; nil answers 404.
type imdsExchange struct {
	put, get http.HandlerFunc
}

func (e imdsExchange) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := e.get
	if r.Method == http.MethodPut {
		h = e.put
	}
	if h == nil {
		http.NotFound(w, r)
		return
	}
	h(w, r)
}

func imdsReply(status int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// imdsTokenReply answers a PUT like IMDS does.
func imdsTokenReply(tok string) http.HandlerFunc {
	return imdsReply(200, tok, imdsTTLHeader, imdsTokenTTL)
}

// imdsFlaky answers with the given statuses in turn, then delegates to next.
func imdsFlaky(next http.HandlerFunc, statuses ...int) http.HandlerFunc {
	var mu sync.Mutex
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		var status int
		if len(statuses) > 0 {
			status, statuses = statuses[0], statuses[1:]
		}
		mu.Unlock()
		if status != 0 {
			w.WriteHeader(status)
			return
		}
		next(w, r)
	}
}

func TestIMDSProbeReplies(t *testing.T) {
	const tok = "AQAEAtesttoken-_="
	okGet := imdsReply(200, "i-0abc")
	tests := []struct {
		name     string
		ex       imdsExchange
		want     types.IMDS
		errorHas string
	}{
		{"v2", imdsExchange{imdsTokenReply(tok), okGet},
			types.IMDS{Reachable: true, Version: "v2", Class: "ok", Status: 200, TokenStatus: 200, Stage: "get", Attempts: 2, InstanceID: "i-0abc"}, ""},
		{"token PUT 404, tokenless GET works: v1", imdsExchange{imdsReply(404, ""), okGet},
			types.IMDS{Reachable: true, Version: "v1", Class: "ok", Status: 200, TokenStatus: 404, Stage: "get", Attempts: 2, InstanceID: "i-0abc"}, ""},
		{"token PUT 405, tokenless GET works: v1", imdsExchange{imdsReply(405, ""), okGet},
			types.IMDS{Reachable: true, Version: "v1", Class: "ok", Status: 200, TokenStatus: 405, Stage: "get", Attempts: 2, InstanceID: "i-0abc"}, ""},
		{"token PUT 403, tokenless GET 401: still disabled at the token step", imdsExchange{imdsReply(403, ""), imdsReply(401, "")},
			types.IMDS{Class: "http_403", Status: 403, TokenStatus: 403, Stage: "token", Attempts: 2}, "GET /latest/meta-data/instance-id: HTTP 401"},
		{"token PUT 404, tokenless GET 404", imdsExchange{imdsReply(404, ""), imdsReply(404, "")},
			types.IMDS{Class: "http_404", Status: 404, TokenStatus: 404, Stage: "token", Attempts: 2}, "HTTP 404"},
		{"token PUT 400 is not a v1 sign", imdsExchange{imdsReply(400, ""), okGet},
			types.IMDS{Class: "http_400", Status: 400, TokenStatus: 400, Stage: "token", Attempts: 1}, "HTTP 400 Bad Request"},
		{"GET 401 with a token", imdsExchange{imdsTokenReply(tok), imdsReply(401, "")},
			types.IMDS{Class: "http_401", Status: 401, TokenStatus: 200, Stage: "get", Attempts: 2}, "HTTP 401"},
		{"GET 404 with a token", imdsExchange{imdsTokenReply(tok), imdsReply(404, "")},
			types.IMDS{Class: "http_404", Status: 404, TokenStatus: 200, Stage: "get", Attempts: 2}, "HTTP 404"},
		{"429 then success is retried", imdsExchange{imdsFlaky(imdsTokenReply(tok), 429, 503), okGet},
			types.IMDS{Reachable: true, Version: "v2", Class: "ok", Status: 200, TokenStatus: 200, Stage: "get", Attempts: 4, InstanceID: "i-0abc"}, ""},
		{"5xx on every GET stops at MaxAttempts", imdsExchange{imdsTokenReply(tok), imdsReply(503, "")},
			types.IMDS{Class: "http_5xx", Status: 503, TokenStatus: 200, Stage: "get", Attempts: 4}, "after 3 attempts"},
		{"an error status with a huge body keeps its class", imdsExchange{imdsTokenReply(tok), imdsReply(404, strings.Repeat("x", imdsMaxBody+1))},
			types.IMDS{Class: "http_404", Status: 404, TokenStatus: 200, Stage: "get", Attempts: 2}, "HTTP 404"},
		{"401 is not retried", imdsExchange{imdsTokenReply(tok), imdsFlaky(okGet, 401)},
			types.IMDS{Class: "http_401", Status: 401, TokenStatus: 200, Stage: "get", Attempts: 2}, "HTTP 401"},
		{"407 is a proxy", imdsExchange{imdsReply(407, "", "Proxy-Authenticate", "Basic"), okGet},
			types.IMDS{Class: "proxy", Status: 407, TokenStatus: 407, Stage: "token", Attempts: 1}, "proxy"},
		{"a proxy's 503 is not retried", imdsExchange{imdsReply(503, "<html>squid</html>", "Via", "1.1 squid"), okGet},
			types.IMDS{Class: "proxy", Status: 503, TokenStatus: 503, Stage: "token", Attempts: 1}, "Via header"},
		{"a proxy's 403 is no v1 sign", imdsExchange{imdsReply(403, "denied", "X-Squid-Error", "ERR_ACCESS_DENIED 0"), okGet},
			types.IMDS{Class: "proxy", Status: 403, TokenStatus: 403, Stage: "token", Attempts: 1}, "X-Squid-Error"},
		{"a proxy's 502 known by Proxy-Connection alone", imdsExchange{imdsTokenReply(tok), imdsReply(502, "<html>bad gateway</html>", "Proxy-Connection", "close")},
			types.IMDS{Class: "proxy", Status: 502, TokenStatus: 200, Stage: "get", Attempts: 2}, "from a proxy (Proxy-Connection header)"},
		{"redirect", imdsExchange{imdsReply(302, "", "Location", "http://example.invalid/"), okGet},
			types.IMDS{Class: "bad_response", Status: 302, TokenStatus: 302, Stage: "token", Attempts: 1}, "HTTP 302"},
		{"empty token", imdsExchange{imdsTokenReply(""), okGet},
			types.IMDS{Class: "bad_response", Status: 200, TokenStatus: 200, Stage: "token", Attempts: 1}, "token is empty"},
		{"token with a space", imdsExchange{imdsTokenReply("AQAEA a"), okGet},
			types.IMDS{Class: "bad_response", Status: 200, TokenStatus: 200, Stage: "token", Attempts: 1}, "not one printable word"},
		{"binary token", imdsExchange{imdsTokenReply("AQ\x00\xffEA"), okGet},
			types.IMDS{Class: "bad_response", Status: 200, TokenStatus: 200, Stage: "token", Attempts: 1}, "not one printable word"},
		{"token too long", imdsExchange{imdsTokenReply(strings.Repeat("A", imdsMaxToken+1)), okGet},
			types.IMDS{Class: "bad_response", Status: 200, TokenStatus: 200, Stage: "token", Attempts: 1}, "longer than any IMDS token"},
		{"token without the TTL echo", imdsExchange{imdsReply(200, tok), okGet},
			types.IMDS{Class: "bad_response", Status: 200, TokenStatus: 200, Stage: "token", Attempts: 1}, "lacks the X-aws-ec2-metadata-token-ttl-seconds"},
		{"oversized imdsTokenReply imdsReply, chunked", imdsExchange{imdsReply(200, strings.Repeat("A", imdsMaxBody+1), imdsTTLHeader, "60"), okGet},
			types.IMDS{Class: "bad_response", Status: 200, TokenStatus: 200, Stage: "token", Attempts: 1}, "over 64 KiB"},
		{"HTML where the instance ID belongs", imdsExchange{imdsTokenReply(tok), imdsReply(200, "<html><body>Welcome home</body></html>")},
			types.IMDS{Class: "bad_response", Status: 200, TokenStatus: 200, Stage: "get", Attempts: 2}, "not one printable word"},
		{"empty instance ID", imdsExchange{imdsTokenReply(tok), imdsReply(200, "")},
			types.IMDS{Class: "bad_response", Status: 200, TokenStatus: 200, Stage: "get", Attempts: 2}, "instance ID is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var seen []*http.Request
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seen = append(seen, r)
				mu.Unlock()
				tt.ex.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			got := probeIMDS(t, srv.URL, imdsFast)
			if diff := cmp.Diff(tt.want, *got, imdsIgnoreVolatile); diff != "" {
				t.Errorf("probe (-want +got):\n%s\nerror: %s", diff, got.Error)
			}
			if !strings.Contains(got.Error, tt.errorHas) {
				t.Errorf("error = %q, want it to mention %q", got.Error, tt.errorHas)
			}
			if strings.Contains(got.Error, tok) {
				t.Errorf("error %q reveals the token", got.Error)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, r := range seen {
				checkIMDSRequest(t, r, tok)
			}
		})
	}
}

// checkIMDSRequest asserts what every IMDS request imdsmend sends looks like.
func checkIMDSRequest(t *testing.T, r *http.Request, tok string) {
	t.Helper()
	if v := r.Header.Get("X-Forwarded-For"); v != "" {
		t.Errorf("%s %s carries X-Forwarded-For %q", r.Method, r.URL.Path, v)
	}
	if ua := r.Header.Get("User-Agent"); ua != imdsUserAgent {
		t.Errorf("%s %s: User-Agent %q, want %q", r.Method, r.URL.Path, ua, imdsUserAgent)
	}
	switch r.Method {
	case http.MethodPut:
		if r.URL.Path != imdsTokenPath || r.Header.Get(imdsTTLHeader) != imdsTokenTTL {
			t.Errorf("token PUT to %s with TTL %q, want %s with %s", r.URL.Path, r.Header.Get(imdsTTLHeader), imdsTokenPath, imdsTokenTTL)
		}
	case http.MethodGet:
		if r.URL.Path != imdsGetPath {
			t.Errorf("GET %s, want %s", r.URL.Path, imdsGetPath)
		}
		if got := r.Header.Get(imdsTokenHeader); got != "" && got != tok {
			t.Errorf("GET sent token %q, want the one the PUT returned", got)
		}
	default:
		t.Errorf("unexpected method %s", r.Method)
	}
}

// imdsRawServer accepts TCP connections and hands each to serve, for replies net/http would
// never write.
func imdsRawServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { defer c.Close(); serve(c) })
		}
	})
	return "http://" + l.Addr().String()
}

// imdsReadRequest consumes one request's head so the client sees its request sent.
func imdsReadRequest(c net.Conn) {
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, _ = c.Read(buf)
}

func TestIMDSProbeTransport(t *testing.T) {
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr
	}
	tests := []struct {
		name      string
		endpoint  string
		class     types.IMDSClass
		attempts  int
		errorHas  string
		reachable bool
	}{
		{"nothing listens", closed(), types.ClassConnectionRefused, 1, "connection refused", false},
		{"not HTTP", imdsRawServer(t, func(c net.Conn) {
			imdsReadRequest(c)
			_, _ = c.Write([]byte("\x00\x01garbage\r\n\r\n"))
		}), types.ClassBadResponse, 1, "token PUT", false},
		{"closed without an answer", imdsRawServer(t, imdsReadRequest), types.ClassBadResponse, 1, "EOF", false},
		{"headers, then the body stalls", imdsRawServer(t, func(c net.Conn) {
			imdsReadRequest(c)
			_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n" + imdsTTLHeader + ": 60\r\n\r\nAQ"))
			imdsReadRequest(c) // holds the connection until the client gives up
		}), types.ClassTimeout, 3, "reading the body", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := probeIMDS(t, tt.endpoint, imdsFast)
			if got.Class != tt.class || got.Attempts != tt.attempts || got.Reachable != tt.reachable || got.Stage != types.StageToken {
				t.Errorf("class %s, attempts %d, reachable %v, stage %s; want %s, %d, %v, token (error: %s)",
					got.Class, got.Attempts, got.Reachable, got.Stage, tt.class, tt.attempts, tt.reachable, got.Error)
			}
			if !strings.Contains(got.Error, tt.errorHas) {
				t.Errorf("error = %q, want it to mention %q", got.Error, tt.errorHas)
			}
		})
	}
}

func TestClassifyTransportError(t *testing.T) {
	connect := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}
	}
	tests := []struct {
		err  error
		want types.IMDSClass
	}{
		{connect(syscall.ECONNREFUSED), types.ClassConnectionRefused},
		{connect(syscall.EPERM), types.ClassConnectionRefused},
		{connect(syscall.EHOSTUNREACH), types.ClassNoRoute},
		{connect(syscall.ENETUNREACH), types.ClassNoRoute},
		{connect(syscall.EACCES), types.ClassNoRoute},
		// No local address can reach it (no IPv6 address for fd00:ec2::254, say).
		{connect(syscall.EADDRNOTAVAIL), types.ClassNoRoute},
		{connect(syscall.ECONNRESET), types.ClassBadResponse},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), types.ClassTimeout},
		{&net.OpError{Op: "dial", Net: "tcp", Err: imdsTimeoutErr{}}, types.ClassTimeout},
		{errors.New("malformed HTTP response"), types.ClassBadResponse},
	}
	for _, tt := range tests {
		if got := imdsTransportClass(tt.err); got != tt.want {
			t.Errorf("classifyTransportError(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

type imdsTimeoutErr struct{}

func (imdsTimeoutErr) Error() string   { return "i/o timeout" }
func (imdsTimeoutErr) Timeout() bool   { return true }
func (imdsTimeoutErr) Temporary() bool { return true }

func TestIMDSProbeIPv6(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv := sim.New(sim.Config{})
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	_, v4 := startIMDSSim(t, sim.Config{Fault: sim.FaultDisabled})
	v6 := "http://" + l.Addr().String()

	cfg := Config{Endpoint: v4, V6Endpoint: v6, Timeouts: imdsFast}
	got4, got6, err := Gather(context.Background(), cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	if got4.Class != types.ClassHTTP403 || got6 == nil || got6.Class != types.ClassOK || got6.Endpoint != v6 {
		t.Errorf("v4 %+v\nv6 %+v\nwant v4 http_403 and v6 ok at %s", got4, got6, v6)
	}

	if _, got6, err = Gather(context.Background(), cfg, false); err != nil {
		t.Fatal(err)
	}
	if got6 != nil {
		t.Errorf("IPv6 probed although disabled: %+v", got6)
	}
}

func TestIMDSProbeBadEndpoint(t *testing.T) {
	for _, endpoint := range []string{"", "169.254.169.254", "ftp://169.254.169.254", "http://user:pw@169.254.169.254", "http://"} {
		_, _, err := Gather(context.Background(), Config{Endpoint: endpoint}, false)
		if err == nil || !strings.Contains(err.Error(), EndpointEnv) {
			t.Errorf("endpoint %q: error %v, want one naming %s", endpoint, err, EndpointEnv)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("endpoint %q: error %v shows the password", endpoint, err)
		}
	}
}

func TestIMDSClientNeverUsesAProxy(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://proxy.invalid:3128")
	c, err := newIMDSClient(DefaultEndpoint, Timeouts{}.withDefaults(), Budget)
	if err != nil {
		t.Fatal(err)
	}
	if c.tr.Proxy != nil {
		t.Error("the IMDS transport has a Proxy function; it must always dial IMDS directly")
	}
}

func TestIMDSTimeoutDefaults(t *testing.T) {
	got := Timeouts{Total: 5 * time.Second}.withDefaults()
	want := Timeouts{Connect: DefaultConnect, Header: DefaultHeader, Total: 5 * time.Second, MaxAttempts: DefaultMaxAttempts}
	if got != want {
		t.Errorf("withDefaults = %+v, want %+v", got, want)
	}
}

// The class documentation in the struct tag lists exactly the class constants.
func TestIMDSClassDoc(t *testing.T) {
	sf, _ := reflect.TypeFor[types.IMDS]().FieldByName("Class")
	doc := sf.Tag.Get("doc")
	for _, c := range types.IMDSClasses() {
		if !strings.Contains(doc, string(c)) {
			t.Errorf("facts.imds.class doc %q does not mention %s", doc, c)
		}
	}
}
