// Package sim is an IMDSv2 server with injectable faults. It behaves like the real
// Instance Metadata Service where that is documented (token PUT with a TTL header, token
// required on GET, 403 for X-Forwarded-For on the PUT, Server: EC2ws) and counts every
// request and TCP connection so tests can assert a client's load. The imdssim command
// serves it standalone; tests can also run it in-process.
package sim

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imdsmend/imdsmend/tests/ec2sim/ec2"
	"github.com/imdsmend/imdsmend/tests/simkit"
)

// Fault selects how the server misbehaves.
type Fault string

// The faults the simulator can inject.
const (
	FaultOK        Fault = "ok"        // a healthy IMDSv2 that requires tokens
	FaultDisabled  Fault = "disabled"  // HttpEndpoint disabled: 403, Server: EC2ws, empty body
	FaultThrottle  Fault = "throttle"  // 429 once more than Rate requests per second arrive
	FaultHang      Fault = "hang"      // accept, read the request, never answer
	Fault500       Fault = "500"       // 500 on every request
	FaultOversized Fault = "oversized" // metadata GETs answer with a body far above 64 KiB
	FaultGarbage   Fault = "garbage"   // metadata GETs answer 200 with binary garbage
	FaultV1Only    Fault = "v1only"    // token PUT refused with 403, tokenless GET works
	FaultXFF       Fault = "xff"       // any request carrying X-Forwarded-For gets 403
	FaultSlow      Fault = "slow"      // healthy, but every answer waits Delay first
	// HttpTokens=optional: tokens are issued and honoured, and tokenless GETs work too
	// (cloud-init off EC2 does not ask for a token).
	FaultOptional Fault = "optional"
)

// Faults lists every fault in sorted order, for --help and validation.
func Faults() []Fault {
	all := []Fault{FaultOK, FaultDisabled, FaultThrottle, FaultHang, Fault500, FaultOversized, FaultGarbage, FaultV1Only, FaultXFF, FaultSlow, FaultOptional}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return all
}

// ParseFault checks a fault name.
func ParseFault(name string) (Fault, error) {
	for _, f := range Faults() {
		if string(f) == name {
			return f, nil
		}
	}
	names := make([]string, 0, len(Faults()))
	for _, f := range Faults() {
		names = append(names, string(f))
	}
	return "", fmt.Errorf("unknown fault %q (one of %s)", name, strings.Join(names, ", "))
}

// Config is the server's behaviour; it can be changed while the server runs.
type Config struct {
	Fault Fault `json:"fault"`
	// Rate is how many requests per second the throttle fault lets through; 0 throttles all.
	Rate float64 `json:"rate"`
	// Delay is how long the slow fault waits before each answer.
	Delay time.Duration `json:"delay"`
	// UserData is what /latest/user-data returns; empty answers 404, as for an instance
	// launched without user data.
	UserData string `json:"user_data,omitempty"`
}

// DefaultDelay is the slow fault's delay when none is given.
const DefaultDelay = 200 * time.Millisecond

// Stats counts what the server saw since it started or was last reset.
type Stats struct {
	Requests     int64 `json:"requests"`
	Connections  int64 `json:"connections"`
	TokenPuts    int64 `json:"token_puts"`
	Gets         int64 `json:"gets"`
	ForwardedFor int64 `json:"forwarded_for"` // requests that carried X-Forwarded-For
}

// Wire constants of IMDS.
const (
	TokenPath   = "/latest/api/token"
	TTLHeader   = "X-aws-ec2-metadata-token-ttl-seconds"
	TokenHeader = "X-aws-ec2-metadata-token"
	MaxTTL      = 21600
	// InstanceID is what /latest/meta-data/instance-id returns: the EC2 simulator's
	// instance, so both sides describe one instance.
	InstanceID = ec2.DefaultInstanceID
	// Region is the instance's region on both sides too.
	Region = ec2.DefaultRegion
	// OversizedBytes is the body length of the oversized fault: far above any sane limit.
	OversizedBytes = 1 << 20
)

// metadata is the small tree the simulator serves under /latest/.
var metadata = map[string]string{
	"/latest/meta-data/":                                                        "ami-id\nhostname\ninstance-id\ninstance-type\nlocal-ipv4\nplacement/",
	"/latest/meta-data/ami-id":                                                  "ami-0abcdef1234567890",
	"/latest/meta-data/hostname":                                                "ip-10-0-0-10.ec2.internal",
	"/latest/meta-data/instance-id":                                             InstanceID,
	"/latest/meta-data/instance-type":                                           "t3.micro",
	"/latest/meta-data/local-ipv4":                                              "10.0.0.10",
	"/latest/meta-data/placement/":                                              "availability-zone\nregion",
	"/latest/meta-data/placement/availability-zone":                             Region + "a",
	"/latest/meta-data/placement/region":                                        Region,
	"/latest/dynamic/instance-identity/":                                        "document",
	"/latest/dynamic/instance-identity/document":                                `{"instanceId":"` + InstanceID + `","region":"` + Region + `","availabilityZone":"` + Region + `a"}`,
	"/latest/meta-data/services/domain":                                         "amazonaws.com",
	"/latest/meta-data/services/partition":                                      "aws",
	"/latest/meta-data/network/interfaces/macs/":                                "0e:00:00:00:00:01/",
	"/latest/meta-data/network/interfaces/macs/0e:00:00:00:00:01/device-number": "0",
}

// Server is the simulator. Its zero value is not usable; call New.
type Server struct {
	mu      sync.Mutex
	cfg     Config
	stats   Stats
	tokens  map[string]time.Time // token → expiry
	window  time.Time            // start of the current throttle second
	inWin   float64              // requests admitted in that second
	servers simkit.Servers
	// now is the clock of the throttle window (a fake one in tests); guarded by mu.
	now func() time.Time
	// options, when set, are the instance's metadata options (an EC2 API simulator's state):
	// they switch the endpoint off, let tokenless GETs in, and set the hop limit.
	options func() ec2.Options
}

// New returns a server with the given configuration.
func New(cfg Config) *Server {
	return &Server{cfg: normalize(cfg), tokens: map[string]time.Time{}, now: time.Now}
}

func normalize(cfg Config) Config {
	if cfg.Fault == "" {
		cfg.Fault = FaultOK
	}
	if cfg.Fault == FaultSlow && cfg.Delay == 0 {
		cfg.Delay = DefaultDelay
	}
	return cfg
}

// Config returns the current configuration.
func (s *Server) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// SetConfig changes the behaviour for every request from now on.
func (s *Server) SetConfig(cfg Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg = normalize(cfg)
	s.window, s.inWin = time.Time{}, 0
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// ResetStats zeroes the counters.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{}
}

// ConnState counts new TCP connections; set it as http.Server.ConnState (Serve does).
func (s *Server) ConnState(_ net.Conn, state http.ConnState) {
	if state == http.StateNew {
		s.mu.Lock()
		s.stats.Connections++
		s.mu.Unlock()
	}
}

// Serve answers IMDS requests on l until Close; after Close it returns at once.
func (s *Server) Serve(l net.Listener) error {
	return s.servers.Serve(&http.Server{Handler: s, ConnState: s.ConnState, ConnContext: withConn, ReadHeaderTimeout: 10 * time.Second}, l)
}

// Close stops every Serve, releases hanging requests and drops open connections.
func (s *Server) Close() error { return s.servers.Close() }

// SetOptionsSource makes the instance's metadata options (read on every request) govern
// IMDS: HttpEndpoint disabled answers 403 to everything, HttpTokens optional lets
// tokenless GETs in, and the hop limit becomes the IP TTL of token-PUT answers. Without
// a source IMDS is enabled, requires tokens and leaves the TTL alone.
func (s *Server) SetOptionsSource(options func() ec2.Options) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.options = options
}

// Options are the metadata options IMDS enforces now.
func (s *Server) Options() ec2.Options {
	s.mu.Lock()
	options := s.options
	s.mu.Unlock()
	if options == nil {
		return ec2.Options{HTTPEndpoint: ec2.Enabled, HTTPTokens: ec2.Required}
	}
	return options()
}

// ServeHTTP implements the IMDS protocol with the configured fault.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cfg, admitted := s.count(r)
	opts := s.Options()
	w.Header().Set("Server", "EC2ws")
	if opts.HTTPEndpoint == ec2.Disabled {
		cfg.Fault = FaultDisabled
	}
	switch cfg.Fault {
	case FaultHang:
		select {
		case <-r.Context().Done():
		case <-s.servers.Closing():
			// Returning would let net/http answer 200 before Close drops the
			// connection; a held request must end without any answer.
			panic(http.ErrAbortHandler)
		}
		return
	case FaultSlow:
		select {
		case <-time.After(cfg.Delay):
		case <-r.Context().Done():
			return
		case <-s.servers.Closing():
			panic(http.ErrAbortHandler)
		}
	case FaultDisabled:
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusForbidden)
		return
	case FaultThrottle:
		if !admitted {
			plain(w, http.StatusTooManyRequests, "")
			return
		}
	case Fault500:
		plain(w, http.StatusInternalServerError, "")
		return
	case FaultXFF:
		if r.Header.Get("X-Forwarded-For") != "" {
			plain(w, http.StatusForbidden, "")
			return
		}
	}
	if r.URL.Path == TokenPath || r.URL.Path == TokenPath+"/" {
		s.token(w, r, cfg, opts.HopLimit)
		return
	}
	s.metadata(w, r, cfg, opts.HTTPTokens == ec2.Optional)
}

// count records the request and, for the throttle fault, decides whether it is admitted.
func (s *Server) count(r *http.Request) (Config, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Requests++
	switch r.Method {
	case http.MethodPut:
		s.stats.TokenPuts++
	case http.MethodGet, http.MethodHead:
		s.stats.Gets++
	}
	if r.Header.Get("X-Forwarded-For") != "" {
		s.stats.ForwardedFor++
	}
	admitted := true
	if s.cfg.Fault == FaultThrottle {
		now := s.now()
		if now.Sub(s.window) >= time.Second {
			s.window, s.inWin = now, 0
		}
		admitted = s.inWin+1 <= s.cfg.Rate
		if admitted {
			s.inWin++
		}
	}
	return s.cfg, admitted
}

func (s *Server) token(w http.ResponseWriter, r *http.Request, cfg Config, hopLimit int) {
	switch {
	case r.Method != http.MethodPut:
		w.Header().Set("Allow", http.MethodPut)
		plain(w, http.StatusMethodNotAllowed, "")
		return
	case r.URL.Path != TokenPath:
		// The real service answers a trailing slash with an empty 403.
		plain(w, http.StatusForbidden, "")
		return
	case cfg.Fault == FaultV1Only:
		plain(w, http.StatusForbidden, "")
		return
	case r.Header.Get("X-Forwarded-For") != "":
		// IMDS refuses token requests that went through a proxy.
		plain(w, http.StatusForbidden, "")
		return
	}
	raw := r.Header.Get(TTLHeader)
	ttl, err := strconv.Atoi(raw)
	if err != nil || ttl < 1 || ttl > MaxTTL {
		plain(w, http.StatusBadRequest, "")
		return
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	tok := "AQAEA" + base64.RawURLEncoding.EncodeToString(b[:])
	s.mu.Lock()
	now := time.Now()
	for t, exp := range s.tokens {
		if now.After(exp) {
			delete(s.tokens, t)
		}
	}
	s.tokens[tok] = now.Add(time.Duration(ttl) * time.Second)
	s.mu.Unlock()
	w.Header().Set(TTLHeader, raw)
	if hopLimit > 0 {
		s.answerWithHopLimit(w, r, hopLimit, tok)
		return
	}
	plain(w, http.StatusOK, tok)
}

var datedPath = regexp.MustCompile(`^/[0-9]{4}-[0-9]{2}-[0-9]{2}/(.*)$`)

func (s *Server) metadata(w http.ResponseWriter, r *http.Request, cfg Config, tokensOptional bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		plain(w, http.StatusMethodNotAllowed, "")
		return
	}
	if cfg.Fault != FaultV1Only && cfg.Fault != FaultOptional && !tokensOptional && !s.validToken(r.Header.Get(TokenHeader)) {
		plain(w, http.StatusUnauthorized, "")
		return
	}
	path := r.URL.Path
	// cloud-init asks for dated API versions (/2009-04-04/…, /2021-03-23/…); IMDS serves
	// the same tree under each.
	if m := datedPath.FindStringSubmatch(path); m != nil {
		path = "/latest/" + m[1]
	}
	body, ok := metadata[path]
	if path == "/latest/user-data" {
		body, ok = cfg.UserData, cfg.UserData != ""
	}
	if !ok {
		plain(w, http.StatusNotFound, "")
		return
	}
	switch cfg.Fault {
	case FaultOversized:
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(OversizedBytes))
		w.WriteHeader(http.StatusOK)
		chunk := []byte(strings.Repeat("i", 32<<10))
		for n := 0; n < OversizedBytes; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		return
	case FaultGarbage:
		garbage := make([]byte, 512)
		_, _ = rand.Read(garbage)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(garbage)
		return
	}
	plain(w, http.StatusOK, body)
}

func (s *Server) validToken(tok string) bool {
	if tok == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[tok]
	return ok && time.Now().Before(exp)
}

// plain writes an IMDS-style text answer; errors carry an empty body like the real service.
func plain(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
