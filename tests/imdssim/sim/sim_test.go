package sim

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imdsmend/imdsmend/tests/simkit"
)

func serve(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	s := New(cfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() { _ = s.Close() })
	return s, "http://" + l.Addr().String()
}

type answer struct {
	Status int
	Body   string
	TTL    string
	Server string
}

func call(t *testing.T, c *http.Client, method, url string, hdr ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, string(b), resp.Header.Get(TTLHeader), resp.Header.Get("Server")}
}

func TestProtocol(t *testing.T) {
	_, base := serve(t, Config{})
	c := &http.Client{}
	tok := call(t, c, http.MethodPut, base+TokenPath, TTLHeader, "60")
	if tok.Status != 200 || tok.TTL != "60" || !strings.HasPrefix(tok.Body, "AQAEA") {
		t.Fatalf("token PUT = %+v, want 200 with the TTL echoed and a token", tok)
	}
	tests := []struct {
		name   string
		method string
		path   string
		hdr    []string
		want   answer
	}{
		{"GET with the token", "GET", "/latest/meta-data/instance-id", []string{TokenHeader, tok.Body}, answer{200, InstanceID, "", "EC2ws"}},
		{"GET without a token", "GET", "/latest/meta-data/instance-id", nil, answer{401, "", "", "EC2ws"}},
		{"GET with a made-up token", "GET", "/latest/meta-data/instance-id", []string{TokenHeader, "AQAEAforged"}, answer{401, "", "", "EC2ws"}},
		{"unknown path", "GET", "/latest/meta-data/nope", []string{TokenHeader, tok.Body}, answer{404, "", "", "EC2ws"}},
		{"PUT without TTL", "PUT", TokenPath, nil, answer{400, "", "", "EC2ws"}},
		{"PUT with TTL 0", "PUT", TokenPath, []string{TTLHeader, "0"}, answer{400, "", "", "EC2ws"}},
		{"PUT with TTL above 21600", "PUT", TokenPath, []string{TTLHeader, "21601"}, answer{400, "", "", "EC2ws"}},
		{"PUT with a non-number TTL", "PUT", TokenPath, []string{TTLHeader, "1m"}, answer{400, "", "", "EC2ws"}},
		{"PUT through a proxy", "PUT", TokenPath, []string{TTLHeader, "60", "X-Forwarded-For", "10.0.0.1"}, answer{403, "", "", "EC2ws"}},
		{"PUT with a trailing slash", "PUT", TokenPath + "/", []string{TTLHeader, "60"}, answer{403, "", "", "EC2ws"}},
		{"GET on the token path", "GET", TokenPath, nil, answer{405, "", "", "EC2ws"}},
		{"GET a dated path", "GET", "/2009-04-04/meta-data/instance-id", []string{TokenHeader, tok.Body}, answer{200, InstanceID, "", "EC2ws"}},
		{"GET user data without any", "GET", "/2021-03-23/user-data", []string{TokenHeader, tok.Body}, answer{404, "", "", "EC2ws"}},
	}
	for _, tt := range tests {
		got := call(t, c, tt.method, base+tt.path, tt.hdr...)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		cfg      Config
		put, get int
		getBody  func(string) bool
	}{
		{Config{Fault: FaultDisabled}, 403, 403, func(b string) bool { return b == "" }},
		{Config{Fault: FaultThrottle}, 429, 429, nil},
		{Config{Fault: Fault500}, 500, 500, nil},
		{Config{Fault: FaultV1Only}, 403, 200, func(b string) bool { return b == InstanceID }},
		{Config{Fault: FaultOversized}, 200, 200, func(b string) bool { return len(b) == OversizedBytes }},
		{Config{Fault: FaultGarbage}, 200, 200, func(b string) bool { return len(b) > 0 && b != InstanceID }},
		{Config{Fault: FaultSlow, Delay: time.Millisecond}, 200, 200, func(b string) bool { return b == InstanceID }},
		{Config{Fault: FaultXFF}, 200, 200, func(b string) bool { return b == InstanceID }},
		{Config{Fault: FaultOptional}, 200, 200, func(b string) bool { return b == InstanceID }},
	}
	for _, tt := range tests {
		t.Run(string(tt.cfg.Fault), func(t *testing.T) {
			_, base := serve(t, tt.cfg)
			c := &http.Client{}
			put := call(t, c, http.MethodPut, base+TokenPath, TTLHeader, "60")
			get := call(t, c, http.MethodGet, base+"/latest/meta-data/instance-id", TokenHeader, put.Body)
			if put.Status != tt.put || get.Status != tt.get {
				t.Errorf("PUT %d, GET %d; want %d, %d", put.Status, get.Status, tt.put, tt.get)
			}
			if tt.getBody != nil && !tt.getBody(get.Body) {
				t.Errorf("GET body of %d bytes is not what %s serves", len(get.Body), tt.cfg.Fault)
			}
		})
	}
}

// TestOptionalTokensAndUserData: with HttpTokens=optional a tokenless GET works, as
// cloud-init off EC2 sends them, and user data is served under a dated path too.
func TestOptionalTokensAndUserData(t *testing.T) {
	_, base := serve(t, Config{Fault: FaultOptional, UserData: "#cloud-config\n"})
	c := &http.Client{}
	for _, path := range []string{"/latest/user-data", "/2009-04-04/user-data"} {
		if got := call(t, c, http.MethodGet, base+path); got.Status != 200 || got.Body != "#cloud-config\n" {
			t.Errorf("tokenless GET %s = %+v, want the user data", path, got)
		}
	}
}

func TestXFFFaultRefusesEveryForwardedRequest(t *testing.T) {
	s, base := serve(t, Config{Fault: FaultXFF})
	c := &http.Client{}
	tok := call(t, c, http.MethodPut, base+TokenPath, TTLHeader, "60")
	got := call(t, c, http.MethodGet, base+"/latest/meta-data/instance-id", TokenHeader, tok.Body, "X-Forwarded-For", "10.0.0.1")
	if got.Status != 403 {
		t.Errorf("forwarded GET: %d, want 403", got.Status)
	}
	if st := s.Stats(); st.ForwardedFor != 1 {
		t.Errorf("forwarded_for = %d, want 1", st.ForwardedFor)
	}
}

func TestThrottleRate(t *testing.T) {
	s, base := serve(t, Config{Fault: FaultThrottle, Rate: 2})
	clock := simkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s.mu.Lock()
	s.now = clock.Now
	s.mu.Unlock()
	c := &http.Client{}
	var statuses []int
	put := func() {
		statuses = append(statuses, call(t, c, http.MethodPut, base+TokenPath, TTLHeader, "60").Status)
	}
	// Three requests within a second: the third is past the rate. Most of a second later
	// the window still holds; a second after it opened, a new one admits again.
	put()
	put()
	put()
	clock.Advance(999 * time.Millisecond)
	put()
	clock.Advance(time.Millisecond)
	put()
	if diff := cmp.Diff([]int{200, 200, 429, 429, 200}, statuses); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

func TestHangReleasedOnClose(t *testing.T) {
	s, base := serve(t, Config{Fault: FaultHang})
	errs := make(chan error, 1)
	go func() {
		resp, err := http.Get(base + "/latest/meta-data/instance-id")
		if err == nil {
			resp.Body.Close()
		}
		errs <- err
	}()
	// Close only once the request is inside the handler.
	waitFor(t, func() bool { return s.Stats().Requests == 1 })
	_ = s.Close()
	if err := <-errs; err == nil {
		t.Error("a hanging request got an answer")
	}
}

func TestServeAfterClose(t *testing.T) {
	s := New(Config{})
	_ = s.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = l.Close()
		t.Fatal("Serve after Close did not return")
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Error("the listener still accepts after Serve returned")
	}
}

func TestStatsAndAdmin(t *testing.T) {
	s, base := serve(t, Config{})
	sock := filepath.Join(t.TempDir(), "admin.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s.AdminHandler()}
	go func() { _ = hs.Serve(l) }()
	t.Cleanup(func() { _ = hs.Close() })
	admin := NewAdminClient(sock)
	ctx := context.Background()

	// Two requests over one keep-alive connection, two over fresh ones.
	keep := &http.Client{}
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	tok := call(t, keep, http.MethodPut, base+TokenPath, TTLHeader, "60")
	call(t, keep, http.MethodGet, base+"/latest/meta-data/instance-id", TokenHeader, tok.Body)
	call(t, fresh, http.MethodGet, base+"/latest/meta-data/ami-id", TokenHeader, tok.Body)
	call(t, fresh, http.MethodGet, base+"/latest/meta-data/ami-id", TokenHeader, tok.Body, "X-Forwarded-For", "10.1.1.1")
	st, err := admin.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Stats{Requests: 4, Connections: 3, TokenPuts: 1, Gets: 3, ForwardedFor: 1}, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}

	if err := admin.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := admin.SetConfig(ctx, Config{Fault: FaultDisabled}); err != nil {
		t.Fatal(err)
	}
	if got := call(t, fresh, http.MethodPut, base+TokenPath, TTLHeader, "60"); got.Status != 403 {
		t.Errorf("after switching to disabled: PUT %d, want 403", got.Status)
	}
	if st, _ := admin.Stats(ctx); st.Requests != 1 {
		t.Errorf("after reset: %d requests, want 1", st.Requests)
	}
	if err := admin.SetConfig(ctx, Config{Fault: "bogus"}); err == nil || !strings.Contains(err.Error(), "unknown fault") {
		t.Errorf("bogus fault: %v, want an unknown-fault error", err)
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		fault, rate, delay string
		want               Config
		ok                 bool
	}{
		{"", "", "", Config{Fault: FaultOK}, true},
		{"slow", "", "", Config{Fault: FaultSlow}, true},
		{"slow", "", "1.5s", Config{Fault: FaultSlow, Delay: 1500 * time.Millisecond}, true},
		{"throttle", "5", "", Config{Fault: FaultThrottle, Rate: 5}, true},
		{"throttle", "-1", "", Config{}, false},
		{"slow", "", "soon", Config{}, false},
		{"nope", "", "", Config{}, false},
	}
	for _, tt := range tests {
		got, err := ParseConfig(tt.fault, tt.rate, tt.delay)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseConfig(%q, %q, %q) = %+v, %v; want %+v, ok %v", tt.fault, tt.rate, tt.delay, got, err, tt.want, tt.ok)
		}
	}
	// The slow fault's default delay applies once the config is in use.
	if got := New(Config{Fault: FaultSlow}).Config().Delay; got != DefaultDelay {
		t.Errorf("slow default delay = %v, want %v", got, DefaultDelay)
	}
}

// waitFor polls cond until it holds or the test's deadline nears.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
