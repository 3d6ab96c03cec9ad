package imds

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/imdsmend/imdsmend/internal/types"
)

// imdsTokenServer is IMDS with tokens it can forget (as after a restart), counting what
// it sees.
type imdsTokenServer struct {
	ttl string // the TTL echo

	mu                   sync.Mutex
	tokens               map[string]bool
	puts, requests, conn int
}

func (s *imdsTokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if r.Method == http.MethodPut {
		s.puts++
		tok := "AQAEAtoken" + strconv.Itoa(s.puts)
		s.tokens[tok] = true
		imdsReply(200, tok, imdsTTLHeader, s.ttl)(w, r)
		return
	}
	if !s.tokens[r.Header.Get(imdsTokenHeader)] {
		imdsReply(401, "")(w, r)
		return
	}
	imdsReply(200, "i-0abc")(w, r)
}

func (s *imdsTokenServer) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// TestIMDSTokenReuse: the probes of one process share one token while it lives and one
// keep-alive connection; a kept token IMDS refuses (401) is dropped and the probe starts
// again once with a fresh one; a token about to expire is not kept.
func TestIMDSTokenReuse(t *testing.T) {
	tests := []struct {
		name   string
		ttl    string
		forget bool // IMDS forgets its tokens between the probes
		// the second probe's attempts; in all, token PUTs, requests and connections
		attempts, puts, requests, conns int
	}{
		{"reused", imdsTokenTTL, false, 1, 1, 3, 1},
		{"refused after a restart, renewed once", imdsTokenTTL, true, 3, 2, 5, 1},
		{"about to expire", "60", false, 2, 2, 4, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &imdsTokenServer{ttl: tt.ttl, tokens: map[string]bool{}}
			srv := httptest.NewUnstartedServer(s)
			srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
				if st == http.StateNew {
					s.mu.Lock()
					s.conn++
					s.mu.Unlock()
				}
			}
			srv.Start()
			t.Cleanup(srv.Close)
			cfg := Config{Endpoint: srv.URL, Timeouts: imdsFast}
			first, _, err := Gather(context.Background(), cfg, false)
			if err != nil || first.Class != types.ClassOK {
				t.Fatalf("first probe: %v %+v", err, first)
			}
			if tt.forget {
				s.forget()
			}
			second, _, err := Gather(context.Background(), cfg, false)
			if err != nil {
				t.Fatal(err)
			}
			want := types.IMDS{Endpoint: srv.URL, Reachable: true, Version: "v2", Class: "ok", Status: 200, TokenStatus: 200, Stage: "get", Attempts: tt.attempts, InstanceID: "i-0abc"}
			second.LatencyMS = 0
			if *second != want {
				t.Errorf("second probe %+v\nwant %+v", *second, want)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.puts != tt.puts || s.requests != tt.requests || s.conn != tt.conns {
				t.Errorf("%d token PUTs, %d requests over %d connections; want %d, %d, %d", s.puts, s.requests, s.conn, tt.puts, tt.requests, tt.conns)
			}
		})
	}
}
