// Package ec2 is a simulator of the EC2 Query API subset imdsmend uses: DescribeInstances,
// ModifyInstanceMetadataOptions, GetInstanceMetadataDefaults, DescribeRegions,
// DescribeImages, and STS AssumeRole. It answers in the real service's XML shapes (the
// namespace, requestId, the <Response><Errors> error document and its HTTP statuses), so
// the AWS SDK for Go and the AWS CLI parse it as they parse the real thing. It reads the
// region and the account from the request's SigV4 credential scope and access key, as the
// real service does, and injects faults (unauthorized, throttled, unsupported, declarative
// policy, never applied, malformed XML, slow) for tests.
//
// The instance's metadata options are shared state: an IMDS simulator in the same process
// reads them through EffectiveOptions, so disabling the endpoint here makes IMDS answer 403.
package ec2

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/imdsmend/imdsmend/tests/simkit"
)

// Defaults of a standalone simulator: one running instance, the same one the IMDS
// simulator (tests/imdssim) describes.
const (
	DefaultInstanceID = "i-0123456789abcdef0"
	DefaultRegion     = "us-east-1"
	DefaultAccount    = "123456789012"
	DefaultImageID    = "ami-0abcdef1234567890"
	// Namespace is the XML namespace of every EC2 response of API version 2016-11-15.
	Namespace  = "http://ec2.amazonaws.com/doc/2016-11-15/"
	APIVersion = "2016-11-15"
)

// Wire values of the metadata options.
const (
	Enabled   = "enabled"
	Disabled  = "disabled"
	Optional  = "optional"
	Required  = "required"
	StatePend = "pending"
	StateDone = "applied"
)

// Options are an instance's metadata options as DescribeInstances shows them.
type Options struct {
	HTTPEndpoint         string `json:"http_endpoint"`
	HTTPTokens           string `json:"http_tokens"`
	HopLimit             int    `json:"hop_limit"`
	HTTPProtocolIPv6     string `json:"http_protocol_ipv6"`
	InstanceMetadataTags string `json:"instance_metadata_tags"`
	State                string `json:"state"`
}

// DefaultOptions are what a new instance gets: the endpoint on, IMDSv2 required, hop
// limit 2 (the AL2023 defaults).
func DefaultOptions() Options {
	return Options{HTTPEndpoint: Enabled, HTTPTokens: Required, HopLimit: 2, HTTPProtocolIPv6: Disabled, InstanceMetadataTags: Disabled, State: StateDone}
}

// Tag is an EC2 tag.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Instance is one simulated instance.
type Instance struct {
	ID      string `json:"id"`
	Region  string `json:"region"`
	Account string `json:"account"`
	ImageID string `json:"image_id"`
	// StateName is the instance state (running, stopped, …).
	StateName string  `json:"state_name"`
	Type      string  `json:"type"`
	Tags      []Tag   `json:"tags,omitempty"`
	Options   Options `json:"options"`
}

// instance is the server's record: what Describe shows, and what IMDS enforces.
type instance struct {
	Instance
	// applied is what the instance enforces; Options differs from it while a change is
	// pending.
	applied Options
	// describesLeft counts the DescribeInstances answers that still show a pending change;
	// modified is when it was asked for.
	describesLeft int
	modified      time.Time
}

// InstanceStateCode is the numeric code EC2 gives each state name.
var InstanceStateCode = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

// AccountDefaults are an account's IMDS defaults in one region (GetInstanceMetadataDefaults);
// empty strings and a zero hop limit are "no preference" and left out of the answer.
type AccountDefaults struct {
	HTTPTokens              string `json:"http_tokens,omitempty"`
	HopLimit                int    `json:"hop_limit,omitempty"`
	HTTPEndpoint            string `json:"http_endpoint,omitempty"`
	InstanceMetadataTags    string `json:"instance_metadata_tags,omitempty"`
	HTTPTokensEnforced      string `json:"http_tokens_enforced,omitempty"`
	ManagedBy               string `json:"managed_by,omitempty"`
	ManagedExceptionMessage string `json:"managed_exception_message,omitempty"`
}

// Image is an AMI as DescribeImages shows it.
type Image struct {
	ID          string `json:"id"`
	Region      string `json:"region"`
	Name        string `json:"name"`
	ImdsSupport string `json:"imds_support,omitempty"` // "v2.0" or empty
}

// Stats counts what the server answered since it started or was last reset.
type Stats struct {
	Requests  int64            `json:"requests"`
	ByAction  map[string]int64 `json:"by_action"`
	Errors    map[string]int64 `json:"errors"`    // by error code
	Throttled int64            `json:"throttled"` // RequestLimitExceeded answers
	// Modified counts ModifyInstanceMetadataOptions calls that changed something (not
	// dry runs, not errors).
	Modified int64 `json:"modified"`
}

// Server is the simulator. Its zero value is not usable; call New.
type Server struct {
	mu        sync.Mutex
	cfg       Config
	faultLeft int // answers left for a counted fault
	instances map[string]*instance
	order     []string                   // instance IDs in creation order: the paging order
	defaults  map[string]AccountDefaults // account/region → defaults
	images    map[string]Image
	regions   []string
	keys      map[string]Credentials // access key → credentials (accounts, STS sessions)
	roles     map[string]bool        // role ARNs AssumeRole accepts
	buckets   map[string]*bucket     // throttling: account/region/kind → bucket
	stats     Stats
	now       func() time.Time
	servers   simkit.Servers
}

// New returns a server with the given behaviour and no instances (see AddInstance and
// Generate).
func New(cfg Config) *Server {
	s := &Server{
		instances: map[string]*instance{},
		defaults:  map[string]AccountDefaults{},
		images:    map[string]Image{},
		regions:   []string{DefaultRegion},
		keys:      map[string]Credentials{},
		roles:     map[string]bool{},
		buckets:   map[string]*bucket{},
		now:       time.Now,
	}
	s.setConfigLocked(cfg)
	s.stats = newStats()
	return s
}

// NewDefault returns a server holding the one instance the IMDS simulator describes.
func NewDefault(cfg Config) *Server {
	s := New(cfg)
	s.AddInstance(Instance{ID: DefaultInstanceID})
	s.AddImage(Image{ID: DefaultImageID, Name: "al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64", ImdsSupport: "v2.0"})
	return s
}

func newStats() Stats { return Stats{ByAction: map[string]int64{}, Errors: map[string]int64{}} }

// SetClock replaces the clock of the pending→applied delay and the throttle buckets
// (tests use a fake one).
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// AddInstance adds (or replaces) an instance; empty fields take the defaults.
func (s *Server) AddInstance(in Instance) {
	if in.Region == "" {
		in.Region = DefaultRegion
	}
	if in.Account == "" {
		in.Account = DefaultAccount
	}
	if in.ImageID == "" {
		in.ImageID = DefaultImageID
	}
	if in.StateName == "" {
		in.StateName = "running"
	}
	if in.Type == "" {
		in.Type = "t3.micro"
	}
	if in.Options == (Options{}) {
		in.Options = DefaultOptions()
	}
	if in.Options.State == "" {
		in.Options.State = StateDone
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addLocked(in)
}

func (s *Server) addLocked(in Instance) {
	if _, ok := s.instances[in.ID]; !ok {
		s.order = append(s.order, in.ID)
	}
	rec := &instance{Instance: in, applied: in.Options}
	rec.applied.State = StateDone
	if in.Options.State == StatePend {
		// A generated fleet's pending change: what it enforces is the defaults until applied.
		rec.applied = DefaultOptions()
		rec.describesLeft = -1 // stays pending until something applies it
	}
	s.instances[in.ID] = rec
	if !containsString(s.regions, in.Region) {
		s.regions = append(s.regions, in.Region)
		sort.Strings(s.regions)
	}
}

// RemoveInstance forgets an instance, as if it had been terminated long ago.
func (s *Server) RemoveInstance(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.instances[id]; !ok {
		return
	}
	delete(s.instances, id)
	for i, v := range s.order {
		if v == id {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
}

// AddImage adds an AMI; an empty region is the default one.
func (s *Server) AddImage(img Image) {
	if img.Region == "" {
		img.Region = DefaultRegion
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.images[img.Region+"/"+img.ID] = img
}

// SetDefaults sets an account's IMDS defaults in a region.
func (s *Server) SetDefaults(account, region string, d AccountDefaults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.defaults[account+"/"+region] = d
}

// Instance returns an instance as DescribeInstances would show it now (without counting
// as a Describe).
func (s *Server) Instance(id string) (Instance, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.instances[id]
	if !ok {
		return Instance{}, false
	}
	s.settleLocked(rec, false)
	return cloneInstance(rec.Instance), true
}

// Instances lists every instance in paging order.
func (s *Server) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Instance, 0, len(s.order))
	for _, id := range s.order {
		rec := s.instances[id]
		s.settleLocked(rec, false)
		out = append(out, cloneInstance(rec.Instance))
	}
	return out
}

// EffectiveOptions are the options the instance enforces now: a pending change counts
// only once applied. IMDS simulators call it on every request.
func (s *Server) EffectiveOptions(id string) (Options, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.instances[id]
	if !ok {
		return Options{}, false
	}
	s.settleLocked(rec, false)
	return rec.applied, true
}

// SetOptions sets an instance's options at once, applied, as if changed long ago (tests
// and the admin API set up a broken instance this way).
func (s *Server) SetOptions(id string, o Options) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.instances[id]
	if !ok {
		return fmt.Errorf("no instance %s", id)
	}
	o.State = StateDone
	rec.Options, rec.applied, rec.describesLeft = o, o, 0
	return nil
}

// settleLocked moves a pending change to applied when its delay has passed or, when
// describing, when enough DescribeInstances answers have shown it pending.
func (s *Server) settleLocked(rec *instance, describing bool) {
	if rec.Options.State != StatePend || s.cfg.Fault == FaultNeverApplied || rec.describesLeft < 0 {
		return
	}
	switch {
	case s.cfg.ApplyDelay > 0:
		if s.now().Sub(rec.modified) < s.cfg.ApplyDelay {
			return
		}
	case describing:
		if rec.describesLeft > 0 {
			rec.describesLeft--
			return
		}
	default:
		return
	}
	rec.Options.State = StateDone
	rec.applied = rec.Options
}

func cloneInstance(in Instance) Instance {
	in.Tags = append([]Tag(nil), in.Tags...)
	return in
}

func containsString(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Serve answers EC2 (and STS) requests on l until Close; after Close it returns at once.
func (s *Server) Serve(l net.Listener) error {
	return s.servers.Serve(&http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}, l)
}

// Close stops every Serve and releases slow requests.
func (s *Server) Close() error { return s.servers.Close() }

// requestID is a fresh request ID in the service's UUID form.
func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// validInstanceID is the shape EC2 accepts: i- and 8 or 17 hex digits.
func validInstanceID(id string) bool {
	hex, ok := strings.CutPrefix(id, "i-")
	if !ok || (len(hex) != 8 && len(hex) != 17) {
		return false
	}
	for _, c := range hex {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
