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
	// Every answer waits Delay first.
	FaultSlow Fault = "slow"
)

// Faults lists every fault in sorted order, for --help and validation.
func Faults() []Fault {
	all := []Fault{FaultOK, FaultUnauthorized, FaultThrottled, FaultUnsupported, FaultDeclarative, FaultNeverApplied, FaultMalformed, FaultSlow}
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

// Rates are EC2's request token buckets for one account and region: each request takes a
// token from its kind's bucket, which refills at Rate tokens per second up to Burst. An
// empty bucket answers RequestLimitExceeded. Zero Burst turns that kind's throttling off.
type Rates struct {
	MutatingBurst    int     `json:"mutating_burst"`
	MutatingRate     float64 `json:"mutating_rate"`
	NonMutatingBurst int     `json:"non_mutating_burst"`
	NonMutatingRate  float64 `json:"non_mutating_rate"`
}

// DefaultRates are the bucket sizes and refill rates EC2 documents for its request
// throttling (mutating: 50, 5/s; non-mutating: 100, 20/s).
var DefaultRates = Rates{MutatingBurst: 50, MutatingRate: 5, NonMutatingBurst: 100, NonMutatingRate: 20}

// Config is the server's behaviour; it can be changed while the server runs.
type Config struct {
	Fault Fault `json:"fault"`
	// Actions limits the fault to these actions (e.g. ModifyInstanceMetadataOptions);
	// empty means every action.
	Actions []string `json:"actions,omitempty"`
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

// ParseConfig builds a Config from its textual form (flags or the admin form); empty
// strings take the defaults.
func ParseConfig(fault, actions, times, delay, applyAfter, applyDelay, throttle string) (Config, error) {
	cfg := Config{ApplyAfter: DefaultApplyAfter}
	var err error
	if fault == "" {
		fault = string(FaultOK)
	}
	if cfg.Fault, err = ParseFault(fault); err != nil {
		return Config{}, err
	}
	for _, a := range strings.Split(actions, ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.Actions = append(cfg.Actions, a)
		}
	}
	if times != "" {
		if cfg.Times, err = strconv.Atoi(times); err != nil || cfg.Times < 0 {
			return Config{}, fmt.Errorf("times %q: want a count, at least 0", times)
		}
	}
	if delay != "" {
		if cfg.Delay, err = time.ParseDuration(delay); err != nil || cfg.Delay < 0 {
			return Config{}, fmt.Errorf("delay %q: want a duration such as 300ms", delay)
		}
	}
	if applyAfter != "" {
		if cfg.ApplyAfter, err = strconv.Atoi(applyAfter); err != nil || cfg.ApplyAfter < 0 {
			return Config{}, fmt.Errorf("apply-after %q: want a count of DescribeInstances answers, at least 0", applyAfter)
		}
	}
	if applyDelay != "" {
		if cfg.ApplyDelay, err = time.ParseDuration(applyDelay); err != nil || cfg.ApplyDelay < 0 {
			return Config{}, fmt.Errorf("apply-delay %q: want a duration such as 2s", applyDelay)
		}
	}
	if cfg.Throttle, err = ParseRates(throttle); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// ParseRates reads "off" or "", "default" (EC2's documented rates), or
// "MUTBURST/MUTRATE,BURST/RATE" such as "50/5,100/20".
func ParseRates(v string) (Rates, error) {
	switch v {
	case "", "off":
		return Rates{}, nil
	case "default":
		return DefaultRates, nil
	}
	bad := fmt.Errorf("throttle %q: want off, default, or MUTATING_BURST/RATE,NON_MUTATING_BURST/RATE such as 50/5,100/20", v)
	mut, non, ok := strings.Cut(v, ",")
	if !ok {
		return Rates{}, bad
	}
	var r Rates
	var err1, err2 error
	if r.MutatingBurst, r.MutatingRate, err1 = parseBucket(mut); err1 != nil {
		return Rates{}, bad
	}
	if r.NonMutatingBurst, r.NonMutatingRate, err2 = parseBucket(non); err2 != nil {
		return Rates{}, bad
	}
	return r, nil
}

func parseBucket(v string) (int, float64, error) {
	b, r, ok := strings.Cut(v, "/")
	if !ok {
		return 0, 0, fmt.Errorf("no /")
	}
	burst, err := strconv.Atoi(b)
	if err != nil || burst < 0 {
		return 0, 0, fmt.Errorf("burst %q", b)
	}
	rate, err := strconv.ParseFloat(r, 64)
	if err != nil || rate < 0 {
		return 0, 0, fmt.Errorf("rate %q", r)
	}
	return burst, rate, nil
}

// String is the form ParseRates reads.
func (r Rates) String() string {
	if r == (Rates{}) {
		return "off"
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	return fmt.Sprintf("%d/%s,%d/%s", r.MutatingBurst, f(r.MutatingRate), r.NonMutatingBurst, f(r.NonMutatingRate))
}

// faultFor says whether the configured fault spoils this answer, and counts it.
func (s *Server) faultFor(action string) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.cfg
	if cfg.Fault == FaultOK || (len(cfg.Actions) > 0 && !containsString(cfg.Actions, action)) {
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

// mutating lists the actions that take from the mutating bucket.
var mutating = map[string]bool{"ModifyInstanceMetadataOptions": true}

// admit takes a token for the request from its account's and region's bucket.
func (s *Server) admit(account, region, action string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.cfg.Throttle
	burst, rate, kind := r.NonMutatingBurst, r.NonMutatingRate, "non-mutating"
	if mutating[action] {
		burst, rate, kind = r.MutatingBurst, r.MutatingRate, "mutating"
	}
	if burst == 0 {
		return true
	}
	now := s.now()
	key := account + "/" + region + "/" + kind
	b, ok := s.buckets[key]
	if !ok {
		b = &bucket{tokens: float64(burst), last: now}
		s.buckets[key] = b
	}
	b.tokens = min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
