package sim

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/imdsmend/imdsmend/tests/simkit"
)

// Admin paths, served on a listener of their own so the IMDS listener's counters only see
// the client under test.
const (
	AdminStats  = "/stats"  // GET: Stats as JSON
	AdminReset  = "/reset"  // POST: zero the counters
	AdminConfig = "/config" // GET: Config as JSON; POST fault=NAME [rate=N] [delay=DURATION]
	// GET: the metadata options IMDS enforces (set them through the EC2 simulator's admin,
	// mounted under /ec2/ by imdssim --ec2).
	AdminOptions = "/options"
)

// AdminHandler lets tests and people read the counters and change the fault at run time:
//
//	curl --unix-socket admin.sock http://sim/stats
//	curl --unix-socket admin.sock -d fault=hang http://sim/config
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+AdminStats, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, s.Stats())
	})
	mux.HandleFunc("POST "+AdminReset, func(w http.ResponseWriter, _ *http.Request) {
		s.ResetStats()
		writeJSON(w, s.Stats())
	})
	mux.HandleFunc("GET "+AdminConfig, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, s.Config())
	})
	mux.HandleFunc("GET "+AdminOptions, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, s.Options())
	})
	mux.HandleFunc("POST "+AdminConfig, func(w http.ResponseWriter, r *http.Request) {
		cfg, err := ParseConfig(r.FormValue("fault"), r.FormValue("rate"), r.FormValue("delay"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.SetConfig(cfg)
		writeJSON(w, s.Config())
	})
	return mux
}

// ParseConfig builds a Config from its textual form (flags or the admin form); empty
// strings take the defaults.
func ParseConfig(fault, rate, delay string) (Config, error) {
	var cfg Config
	var err error
	if fault == "" {
		fault = string(FaultOK)
	}
	if cfg.Fault, err = ParseFault(fault); err != nil {
		return Config{}, err
	}
	if rate != "" {
		if cfg.Rate, err = strconv.ParseFloat(rate, 64); err != nil || cfg.Rate < 0 {
			return Config{}, fmt.Errorf("rate %q: want a number of requests per second, at least 0", rate)
		}
	}
	if delay != "" {
		if cfg.Delay, err = time.ParseDuration(delay); err != nil || cfg.Delay < 0 {
			return Config{}, fmt.Errorf("delay %q: want a duration such as 300ms", delay)
		}
	}
	return cfg, nil
}

var writeJSON = simkit.WriteJSON
