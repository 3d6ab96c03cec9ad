package ec2

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/imdsmend/imdsmend/tests/simkit"
)

// Admin paths, served on a listener of their own so the API's counters see only the
// client under test.
const (
	AdminStats     = "/stats"     // GET: Stats as JSON
	AdminReset     = "/reset"     // POST: zero the counters
	AdminConfig    = "/config"    // GET: Config; POST fault= actions= regions= times= delay= apply_after= apply_delay= throttle=
	AdminInstances = "/instances" // GET [?id=ID]: the instances (or one) as JSON
	AdminOptions   = "/options"   // POST id= [http_endpoint= http_tokens= hop_limit= http_protocol_ipv6= instance_metadata_tags=]: set, applied
	AdminRemove    = "/remove"    // POST id=: the instance is gone (terminated long ago)
	AdminDefaults  = "/defaults"  // POST account= region= http_tokens= hop_limit= http_endpoint= http_tokens_enforced= managed_by= managed_exception_message=
)

// AdminHandler lets tests and people read the counters and the instances, and change
// the fault and an instance's options at run time:
//
//	curl --unix-socket ec2admin.sock http://ec2sim/instances
//	curl --unix-socket ec2admin.sock -d id=i-0123456789abcdef0 -d hop_limit=1 http://ec2sim/options
//	curl --unix-socket ec2admin.sock -d fault=unauthorized -d actions=ModifyInstanceMetadataOptions http://ec2sim/config
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+AdminStats, func(w http.ResponseWriter, _ *http.Request) {
		simkit.WriteJSON(w, s.Stats())
	})
	mux.HandleFunc("POST "+AdminReset, func(w http.ResponseWriter, _ *http.Request) {
		s.ResetStats()
		simkit.WriteJSON(w, s.Stats())
	})
	mux.HandleFunc("GET "+AdminConfig, func(w http.ResponseWriter, _ *http.Request) {
		simkit.WriteJSON(w, s.Config())
	})
	mux.HandleFunc("POST "+AdminConfig, func(w http.ResponseWriter, r *http.Request) {
		cfg, err := ParseConfig(r.FormValue)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.SetConfig(cfg)
		simkit.WriteJSON(w, s.Config())
	})
	mux.HandleFunc("GET "+AdminInstances, func(w http.ResponseWriter, r *http.Request) {
		if id := r.FormValue("id"); id != "" {
			in, ok := s.Instance(id)
			if !ok {
				http.Error(w, "no instance "+id, http.StatusNotFound)
				return
			}
			simkit.WriteJSON(w, in)
			return
		}
		simkit.WriteJSON(w, s.Instances())
	})
	mux.HandleFunc("POST "+AdminOptions, func(w http.ResponseWriter, r *http.Request) {
		id := r.FormValue("id")
		in, ok := s.Instance(id)
		if !ok {
			http.Error(w, "no instance "+id, http.StatusNotFound)
			return
		}
		o, err := optionsForm(in.Options, r.Form)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := s.SetOptions(id, o); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		in, _ = s.Instance(id)
		simkit.WriteJSON(w, in)
	})
	mux.HandleFunc("POST "+AdminRemove, func(w http.ResponseWriter, r *http.Request) {
		id := r.FormValue("id")
		if _, ok := s.Instance(id); !ok {
			http.Error(w, "no instance "+id, http.StatusNotFound)
			return
		}
		s.RemoveInstance(id)
		simkit.WriteJSON(w, map[string]string{"removed": id})
	})
	mux.HandleFunc("POST "+AdminDefaults, func(w http.ResponseWriter, r *http.Request) {
		f := r.FormValue
		d := AccountDefaults{HTTPTokens: f("http_tokens"), HTTPEndpoint: f("http_endpoint"), InstanceMetadataTags: f("instance_metadata_tags"),
			HTTPTokensEnforced: f("http_tokens_enforced"), ManagedBy: f("managed_by"), ManagedExceptionMessage: f("managed_exception_message")}
		if v := f("hop_limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 64 {
				http.Error(w, "hop_limit: want 1 to 64", http.StatusBadRequest)
				return
			}
			d.HopLimit = n
		}
		account, region := f("account"), f("region")
		if account == "" {
			account = DefaultAccount
		}
		if region == "" {
			region = DefaultRegion
		}
		s.SetDefaults(account, region, d)
		simkit.WriteJSON(w, d)
	})
	return mux
}

// optionsForm applies the admin form's option fields to o.
func optionsForm(o Options, form url.Values) (Options, error) {
	enums := []struct {
		field string
		dst   *string
		valid []string
	}{
		{"http_endpoint", &o.HTTPEndpoint, []string{Enabled, Disabled}},
		{"http_tokens", &o.HTTPTokens, []string{Optional, Required}},
		{"http_protocol_ipv6", &o.HTTPProtocolIPv6, []string{Enabled, Disabled}},
		{"instance_metadata_tags", &o.InstanceMetadataTags, []string{Enabled, Disabled}},
	}
	for _, e := range enums {
		v := form.Get(e.field)
		if v == "" {
			continue
		}
		if !containsString(e.valid, v) {
			return o, fmt.Errorf("%s %q: want one of %s", e.field, v, strings.Join(e.valid, ", "))
		}
		*e.dst = v
	}
	if v := form.Get("hop_limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			return o, fmt.Errorf("hop_limit %q: want 1 to 64", v)
		}
		o.HopLimit = n
	}
	return o, nil
}

// AdminClient talks to a simulator's admin listener: "unix:PATH" or "HOST:PORT".
type AdminClient struct{ c *simkit.AdminClient }

// NewAdminClient returns a client for the admin listener at addr.
func NewAdminClient(addr string) *AdminClient {
	return &AdminClient{simkit.NewAdminClient("ec2sim", addr)}
}

// IMDSSimMount is where imdssim --ec2 serves this admin API on its own admin listener.
const IMDSSimMount = "/ec2"

// NewIMDSSimAdminClient returns a client for the EC2 simulator inside an imdssim --ec2,
// through imdssim's admin socket at path.
func NewIMDSSimAdminClient(path string) *AdminClient {
	return &AdminClient{simkit.NewAdminClient("ec2sim", "unix:"+path).Under(IMDSSimMount)}
}

// Stats reads the counters.
func (c *AdminClient) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	return st, c.c.Do(ctx, http.MethodGet, AdminStats, nil, &st)
}

// Reset zeroes the counters.
func (c *AdminClient) Reset(ctx context.Context) error {
	return c.c.Do(ctx, http.MethodPost, AdminReset, url.Values{}, nil)
}

// SetConfig changes the fault, the pending→applied behaviour and the throttling.
func (c *AdminClient) SetConfig(ctx context.Context, cfg Config) error {
	form := url.Values{
		"fault":       {string(cfg.Fault)},
		"actions":     {strings.Join(cfg.Actions, ",")},
		"regions":     {strings.Join(cfg.Regions, ",")},
		"times":       {strconv.Itoa(cfg.Times)},
		"apply_after": {strconv.Itoa(cfg.ApplyAfter)},
		"throttle":    {cfg.Throttle.String()},
	}
	if cfg.Delay > 0 {
		form.Set("delay", cfg.Delay.String())
	}
	if cfg.ApplyDelay > 0 {
		form.Set("apply_delay", cfg.ApplyDelay.String())
	}
	return c.c.Do(ctx, http.MethodPost, AdminConfig, form, nil)
}

// Instance reads one instance as DescribeInstances shows it now.
func (c *AdminClient) Instance(ctx context.Context, id string) (Instance, error) {
	var in Instance
	return in, c.c.Do(ctx, http.MethodGet, AdminInstances+"?id="+url.QueryEscape(id), nil, &in)
}

// SetOptions sets an instance's options, applied at once; empty fields keep their value.
func (c *AdminClient) SetOptions(ctx context.Context, id string, o Options) error {
	form := url.Values{"id": {id}}
	for k, v := range map[string]string{"http_endpoint": o.HTTPEndpoint, "http_tokens": o.HTTPTokens, "http_protocol_ipv6": o.HTTPProtocolIPv6, "instance_metadata_tags": o.InstanceMetadataTags} {
		if v != "" {
			form.Set(k, v)
		}
	}
	if o.HopLimit > 0 {
		form.Set("hop_limit", strconv.Itoa(o.HopLimit))
	}
	return c.c.Do(ctx, http.MethodPost, AdminOptions, form, nil)
}

// RemoveInstance makes an instance vanish, as between an audit and an apply.
func (c *AdminClient) RemoveInstance(ctx context.Context, id string) error {
	return c.c.Do(ctx, http.MethodPost, AdminRemove, url.Values{"id": {id}}, nil)
}
