package ec2

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Fault selects how the server misbehaves.
type Fault string

// The faults the simulator can inject.
const (
	FaultOK Fault = "ok"
	// UnauthorizedOperation (403) with an encoded authorization message.
	FaultUnauthorized Fault = "unauthorized"
	// RequestLimitExceeded (503) on every request, whatever the token buckets say.
	FaultThrottled Fault = "throttled"
	// The account enforces IMDSv2 (httpTokensEnforced): setting HttpTokens=optional is an
	// UnsupportedOperation.
	FaultUnsupported Fault = "unsupported"
	// A declarative policy manages the account's IMDS settings: GetInstanceMetadataDefaults
	// says so, and ModifyInstanceMetadataOptions against it is an UnsupportedOperation
	// carrying the policy's exception message.
	FaultDeclarative Fault = "declarative"
	// A change is accepted and stays pending for ever.
	FaultNeverApplied Fault = "never-applied"
	// 200 with a truncated XML document.
	FaultMalformed Fault = "malformed"
	// The connection closes without an answer, as an endpoint that cannot be reached.
	FaultReset Fault = "reset"
	// Every answer waits Delay first.
	FaultSlow Fault = "slow"
)

// Faults lists every fault in sorted order, for --help and validation.
func Faults() []Fault {
	all := []Fault{FaultOK, FaultUnauthorized, FaultThrottled, FaultUnsupported, FaultDeclarative, FaultNeverApplied, FaultMalformed, FaultReset, FaultSlow}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return all
}

// ParseFault checks a fault name.
func ParseFault(name string) (Fault, error) {
	var names []string
	for _, f := range Faults() {
		if string(f) == name {
			return f, nil
		}
		names = append(names, string(f))
	}
	return "", fmt.Errorf("unknown fault %q (one of %s)", name, strings.Join(names, ", "))
}

// DeclarativeMessage is the exception message the simulated declarative policy carries.
const DeclarativeMessage = "IMDS settings are managed by your organization's declarative policy; contact your cloud platform team"

// Bucket is one kind of EC2 request token bucket: Burst tokens at most, refilled at Rate
// tokens per second. Zero Burst does not throttle that kind.
type Bucket struct {
	Burst int     `json:"burst"`
	Rate  float64 `json:"rate"`
}

// Rates are EC2's request rate limits: every action has a bucket of its own per account
// and region, sized by its kind; a request takes a token, and an empty bucket answers
// RequestLimitExceeded.
type Rates struct {
	Mutating    Bucket `json:"mutating"`
	NonMutating Bucket `json:"non_mutating"`
	// Unpaginated is for non-mutating calls with neither a filter, nor IDs, nor a page size.
	Unpaginated Bucket `json:"unpaginated"`
}

// DefaultRates are the bucket sizes and refill rates EC2 documents for request rate
// limiting: mutating 200 and 5/s, non-mutating 100 and 20/s, unfiltered and unpaginated
// non-mutating 50 and 10/s.
var DefaultRates = Rates{Mutating: Bucket{200, 5}, NonMutating: Bucket{100, 20}, Unpaginated: Bucket{50, 10}}

// Config is the server's behaviour; it can be changed while the server runs.
type Config struct {
	Fault Fault `json:"fault"`
	// Actions limits the fault to these actions (e.g. ModifyInstanceMetadataOptions);
	// empty means every action.
	Actions []string `json:"actions,omitempty"`
	// Regions limits the fault to requests scoped to these regions; empty means all.
	Regions []string `json:"regions,omitempty"`
	// Times is how many answers the fault spoils before the server is healthy again;
	// 0 is every answer.
	Times int `json:"times,omitempty"`
	// Delay is how long the slow fault waits before each answer.
	Delay time.Duration `json:"delay,omitempty"`
	// ApplyAfter is how many DescribeInstances answers show a change pending before it is
	// applied (0: the first Describe after the change shows it applied).
	ApplyAfter int `json:"apply_after"`
	// ApplyDelay, when set, applies a change that long after it was made instead (on the
	// server's clock), whatever ApplyAfter says.
	ApplyDelay time.Duration `json:"apply_delay,omitempty"`
	// Throttle is the request token buckets; the zero value does not throttle.
	Throttle Rates `json:"throttle"`
}

// DefaultApplyAfter is how many Describe answers show a change pending by default: one,
// as a client polling right after the change sees on the real service.
const DefaultApplyAfter = 1

// DefaultDelay is the slow fault's delay when none is given.
const DefaultDelay = 200 * time.Millisecond

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
	s.setConfigLocked(cfg)
}

func (s *Server) setConfigLocked(cfg Config) {
	if cfg.Fault == "" {
		cfg.Fault = FaultOK
	}
	if cfg.Fault == FaultSlow && cfg.Delay == 0 {
		cfg.Delay = DefaultDelay
	}
	s.cfg = cfg
	s.faultLeft = cfg.Times
	s.buckets = map[string]*bucket{}
}

// The fields of a Config's textual form: the admin form's names, and (with - for _) the
// flags'.
var configFields = []string{"fault", "actions", "regions", "times", "delay", "apply_after", "apply_delay", "throttle"}

// ParseConfig builds a Config from its textual form, field by field (see configFields);
// empty fields take the defaults.
func ParseConfig(field func(name string) string) (Config, error) {
	cfg := Config{ApplyAfter: DefaultApplyAfter}
	var err error
	fault := field("fault")
	if fault == "" {
		fault = string(FaultOK)
	}
	if cfg.Fault, err = ParseFault(fault); err != nil {
		return Config{}, err
	}
	cfg.Actions, cfg.Regions = splitList(field("actions")), splitList(field("regions"))
	if times := field("times"); times != "" {
		if cfg.Times, err = strconv.Atoi(times); err != nil || cfg.Times < 0 {
			return Config{}, fmt.Errorf("times %q: want a count, at least 0", times)
		}
	}
	if delay := field("delay"); delay != "" {
		if cfg.Delay, err = time.ParseDuration(delay); err != nil || cfg.Delay < 0 {
			return Config{}, fmt.Errorf("delay %q: want a duration such as 300ms", delay)
		}
	}
	if applyAfter := field("apply_after"); applyAfter != "" {
		if cfg.ApplyAfter, err = strconv.Atoi(applyAfter); err != nil || cfg.ApplyAfter < 0 {
			return Config{}, fmt.Errorf("apply-after %q: want a count of DescribeInstances answers, at least 0", applyAfter)
		}
	}
	if applyDelay := field("apply_delay"); applyDelay != "" {
		if cfg.ApplyDelay, err = time.ParseDuration(applyDelay); err != nil || cfg.ApplyDelay < 0 {
			return Config{}, fmt.Errorf("apply-delay %q: want a duration such as 2s", applyDelay)
		}
	}
	throttle := field("throttle")
	if cfg.Throttle, err = ParseRates(throttle); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func splitList(v string) []string {
	var out []string
	for _, a := range strings.Split(v, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// ParseRates reads "off" or "", "default" (EC2's documented rates), or
// "MUTATING,NON_MUTATING[,UNPAGINATED]" buckets as BURST/RATE, such as "200/5,100/20,50/10"
// (without the third, unpaginated calls share the non-mutating sizes).
func ParseRates(v string) (Rates, error) {
	switch v {
	case "", "off":
		return Rates{}, nil
	case "default":
		return DefaultRates, nil
	}
	bad := fmt.Errorf("throttle %q: want off, default, or MUTATING,NON_MUTATING[,UNPAGINATED] buckets as BURST/RATE such as 200/5,100/20,50/10", v)
	parts := strings.Split(v, ",")
	if len(parts) < 2 || len(parts) > 3 {
		return Rates{}, bad
	}
	var buckets []Bucket
	for _, p := range parts {
		b, r, ok := strings.Cut(p, "/")
		burst, err1 := strconv.Atoi(b)
		rate, err2 := strconv.ParseFloat(r, 64)
		if !ok || err1 != nil || err2 != nil || burst < 0 || rate < 0 {
			return Rates{}, bad
		}
		buckets = append(buckets, Bucket{burst, rate})
	}
	r := Rates{Mutating: buckets[0], NonMutating: buckets[1], Unpaginated: buckets[1]}
	if len(buckets) == 3 {
		r.Unpaginated = buckets[2]
	}
	return r, nil
}

// String is the form ParseRates reads.
func (r Rates) String() string {
	if r == (Rates{}) {
		return "off"
	}
	f := func(b Bucket) string { return strconv.Itoa(b.Burst) + "/" + strconv.FormatFloat(b.Rate, 'g', -1, 64) }
	return f(r.Mutating) + "," + f(r.NonMutating) + "," + f(r.Unpaginated)
}

// faultFor says whether the configured fault spoils this answer, and counts it.
func (s *Server) faultFor(action, region string) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.cfg
	if cfg.Fault == FaultOK || (len(cfg.Actions) > 0 && !containsString(cfg.Actions, action)) ||
		(len(cfg.Regions) > 0 && !containsString(cfg.Regions, region)) {
		return FaultOK
	}
	switch cfg.Fault {
	case FaultUnsupported, FaultDeclarative, FaultNeverApplied:
		// States of the account, not spoiled answers: Times does not apply.
		return cfg.Fault
	}
	if cfg.Times > 0 {
		if s.faultLeft == 0 {
			return FaultOK
		}
		s.faultLeft--
	}
	return cfg.Fault
}

// bucket is one token bucket of EC2's request throttling.
type bucket struct {
	tokens float64
	last   time.Time
}

// mutating lists the actions that take from mutating buckets.
var mutating = map[string]bool{"ModifyInstanceMetadataOptions": true}

// admit takes a token for the request from its action's bucket in its account and region.
func (s *Server) admit(account, region string, req *request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.cfg.Throttle
	b, kind := r.NonMutating, "non-mutating"
	switch {
	case mutating[req.Action]:
		b, kind = r.Mutating, "mutating"
	case len(req.filters()) == 0 && len(req.list("InstanceId")) == 0 && req.Params.Get("MaxResults") == "":
		b, kind = r.Unpaginated, "unpaginated"
	}
	if b.Burst == 0 {
		return true
	}
	now := s.now()
	key := account + "/" + region + "/" + req.Action + "/" + kind
	tb, ok := s.buckets[key]
	if !ok {
		tb = &bucket{tokens: float64(b.Burst), last: now}
		s.buckets[key] = tb
	}
	tb.tokens = min(float64(b.Burst), tb.tokens+now.Sub(tb.last).Seconds()*b.Rate)
	tb.last = now
	if tb.tokens < 1 {
		return false
	}
	tb.tokens--
	return true
}
