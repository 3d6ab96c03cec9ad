package imds

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/imdsmend/imdsmend/internal/types"
	"golang.org/x/time/rate"
)

// TestMain lifts the process's budget: the tests here probe hundreds of times in seconds,
// which is what the budget exists to stop. TestBudget tests a budget of its own.
func TestMain(m *testing.M) {
	Budget = rate.NewLimiter(rate.Inf, 0)
	os.Exit(m.Run())
}

// TestBudget: requests past the budget are not sent, retries included, and the probe
// says why; the budget is shared by the probes it is given to.
func TestBudget(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		sent.Add(1)
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	// Four requests, then none within the probe's bound.
	budget := rate.NewLimiter(rate.Every(BudgetEvery*100), 4)
	cfg := Config{Endpoint: srv.URL, Timeouts: imdsFast, Budget: budget}
	first, _, err := Gather(context.Background(), cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	if first.Class != types.ClassHTTP429 || sent.Load() != 3 {
		t.Errorf("first probe: class %s after %d requests; want http_429 after 3 (every attempt)", first.Class, sent.Load())
	}
	second, _, err := Gather(context.Background(), cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	if sent.Load() != 4 || !strings.Contains(second.Error, "imdsmend's own budget of IMDS requests") {
		t.Errorf("second probe: %d requests in all, error %q; want 4 and the budget named", sent.Load(), second.Error)
	}
}
