// Package simkit holds what the simulators under tests/ (imdssim, ec2sim) share: serving
// until closed, the admin listener and its client, the command's run loop and a test
// clock.
package simkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Servers runs http.Servers until Close; its zero value is ready to use.
type Servers struct {
	mu      sync.Mutex
	init    sync.Once
	once    sync.Once
	closing chan struct{}
	servers []*http.Server
}

// Closing is closed by Close: handlers holding a request select on it to let go.
func (s *Servers) Closing() <-chan struct{} { return s.channel() }

func (s *Servers) channel() chan struct{} {
	s.init.Do(func() { s.closing = make(chan struct{}) })
	return s.closing
}

// Serve runs hs on l until Close; after Close it returns at once.
func (s *Servers) Serve(hs *http.Server, l net.Listener) error {
	closing := s.Closing()
	s.mu.Lock()
	select {
	case <-closing:
		// Close ran before this Serve registered: nothing would ever stop it.
		s.mu.Unlock()
		return l.Close()
	default:
	}
	s.servers = append(s.servers, hs)
	s.mu.Unlock()
	if err := hs.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close stops every Serve, releases held requests and drops open connections.
func (s *Servers) Close() error {
	closing := s.channel()
	s.once.Do(func() { close(closing) })
	s.mu.Lock()
	servers := s.servers
	s.mu.Unlock()
	var first error
	for _, hs := range servers {
		if err := hs.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Listen opens an admin listener, "unix:PATH" or "HOST:PORT"; a unix socket left over
// from a killed run is replaced.
func Listen(addr string) (net.Listener, error) {
	path, isUnix := strings.CutPrefix(addr, "unix:")
	if !isUnix {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("admin listen on %s: %w", addr, err)
		}
		return l, nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale admin socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin listen on %s: %w", path, err)
	}
	return l, nil
}

// Serving is what Run serves: services on their listeners, and an admin handler on its
// own listener (nil: none).
type Serving struct {
	// Serves each serve one listener until Close.
	Serves []func() error
	Close  func() error
	Admin  net.Listener
	// Handler answers on Admin.
	Handler http.Handler
}

// Run serves until SIGINT or SIGTERM, or until a listener fails.
func Run(sv Serving) error {
	errs := make(chan error, len(sv.Serves)+1)
	for _, serve := range sv.Serves {
		go func() { errs <- serve() }()
	}
	if sv.Admin != nil {
		hs := &http.Server{Handler: sv.Handler}
		defer hs.Close()
		go func() {
			if err := hs.Serve(sv.Admin); !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		}()
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sigs:
		return sv.Close()
	case err := <-errs:
		_ = sv.Close()
		return err
	}
}

// AdminClient talks to a simulator's admin listener: "unix:PATH" (reachable from the host
// even when the simulator runs inside a network namespace) or "HOST:PORT".
type AdminClient struct {
	name string
	http *http.Client
	base string
}

// NewAdminClient returns a client for the admin listener at addr; name prefixes its
// errors.
func NewAdminClient(name, addr string) *AdminClient {
	path, isUnix := strings.CutPrefix(addr, "unix:")
	if !isUnix {
		return &AdminClient{name: name, http: &http.Client{Transport: &http.Transport{Proxy: nil}}, base: "http://" + addr}
	}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}
	return &AdminClient{name: name, http: &http.Client{Transport: tr}, base: "http://" + name}
}

// Under returns a client for the same listener whose paths all start with prefix (an
// admin API mounted below another's).
func (c *AdminClient) Under(prefix string) *AdminClient {
	d := *c
	d.base += prefix
	return &d
}

// Do sends form (none when nil) and decodes a JSON answer into out (when not nil).
func (c *AdminClient) Do(ctx context.Context, method, path string, form url.Values, out any) error {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s admin %s %s: %w", c.name, method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s admin %s %s: %s: %s", c.name, method, path, resp.Status, strings.TrimSpace(string(msg)))
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s admin %s %s: decode: %w", c.name, method, path, err)
	}
	return nil
}

// WriteJSON answers an admin request with v.
func WriteJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Clock is a clock that moves only when a test says.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
