package imds

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/imdsmend/imdsmend/internal/types"
)

// TestSend: one request each, no retry, the answer as it came; a PUT that never gets a
// reply times out, and a request the budget stops is not sent.
func TestSend(t *testing.T) {
	hang := make(chan struct{})
	var requests []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests = append(requests, r.Method+" "+r.URL.Path+" ttl="+r.Header.Get(imdsTTLHeader)+" token="+r.Header.Get(imdsTokenHeader))
		switch {
		case r.Method == http.MethodPut && r.Header.Get("X-Test") == "":
			w.Header().Set(imdsTTLHeader, r.Header.Get(imdsTTLHeader))
			_, _ = w.Write([]byte("AQAEAFTRUCK=="))
		case r.Method == http.MethodGet:
			http.Error(w, "", http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	hanging := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
	defer func() { close(hang); hanging.Close() }()

	var d net.Dialer
	dials := 0
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials++
		return d.DialContext(ctx, network, addr)
	}
	fast := Timeouts{Connect: 250 * time.Millisecond, Header: 200 * time.Millisecond}
	spent := rate.NewLimiter(rate.Every(time.Hour), 0)
	tests := []struct {
		name     string
		cfg      Config
		req      Request
		want     Reply // LatencyMS and Error left out
		timedOut bool
		sent     []string
	}{
		{"token PUT answered", Config{Endpoint: srv.URL, Timeouts: fast}, TokenPUT,
			Reply{Sent: true, Status: 200, Class: types.ClassOK}, false, []string{"PUT /latest/api/token ttl=1 token="}},
		{"tokenless GET refused", Config{Endpoint: srv.URL, Timeouts: fast}, TokenlessGET,
			Reply{Sent: true, Status: 401, Class: types.ClassHTTP401}, false, []string{"GET /latest/meta-data/ ttl= token="}},
		{"token PUT unanswered: one try, timed out", Config{Endpoint: hanging.URL, Timeouts: fast}, TokenPUT,
			Reply{Sent: true, Class: types.ClassTimeout}, true, nil},
		{"the budget is spent: not sent", Config{Endpoint: srv.URL, Timeouts: fast, Budget: spent}, TokenPUT,
			Reply{Class: types.ClassTimeout}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requests, dials = nil, 0
			got, err := Send(context.Background(), tt.cfg, dial, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if got.TimedOut() != tt.timedOut {
				t.Errorf("TimedOut = %v, want %v", got.TimedOut(), tt.timedOut)
			}
			if (got.Error == "") != (tt.want.Class == types.ClassOK) {
				t.Errorf("Error %q for class %s", got.Error, got.Class)
			}
			got.LatencyMS, got.Error = 0, ""
			if got != tt.want {
				t.Errorf("Send = %+v, want %+v", got, tt.want)
			}
			if tt.want.Sent != (dials == 1) {
				t.Errorf("%d dials; want one exactly when sent", dials)
			}
			if tt.sent != nil && len(requests) != len(tt.sent) || len(tt.sent) > 0 && requests[0] != tt.sent[0] {
				t.Errorf("requests %q, want %q", requests, tt.sent)
			}
		})
	}
	if _, err := Send(context.Background(), Config{Endpoint: "ftp://x"}, dial, TokenPUT); err == nil {
		t.Error("Send to a non-http endpoint succeeded")
	}
}
