package fleet

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/imdsmend/imdsmend/remediate"
	"github.com/imdsmend/imdsmend/rules"
	"github.com/zclconf/go-cty/cty"
)

// Config configures a Fleet.
type Config struct {
	Cloud  Cloud
	Policy *rules.Policy
	// RoleARNs are the accounts to reach; none means the caller's own account.
	RoleARNs []string
	// Regions to read; ["all"] means every region DescribeRegions lists.
	Regions []string
	Filters []Filter
	// Only limits the rules evaluated (--only).
	Only  []string
	Rates Rates
	// Parallel bounds the accounts and regions read at once; 0 is 16.
	Parallel int
	// Ledger records apply's changes for undo (remediate's format, a file of its own).
	Ledger *remediate.Ledger
	// Progress hears about each change of apply and undo; nil hears nothing.
	Progress Progress
}

// Fleet runs fleet commands.
type Fleet struct {
	opts  Config
	runID string
	// mu guards the scopes' results while changes settle.
	mu sync.Mutex
}

// New returns a Fleet; each command it runs is a run of its own.
func New(opts Config) *Fleet {
	if opts.Parallel <= 0 {
		opts.Parallel = 16
	}
	if opts.Rates == (Rates{}) {
		opts.Rates = DefaultRates
	}
	if opts.Progress == nil {
		opts.Progress = nopProgress{}
	}
	return &Fleet{opts: opts, runID: newRunID()}
}

func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// scope is one account and region being read.
type scope struct {
	Scope
	api   *paced
	stats *Stats
	// results are the instances with findings, unknown rules or a change, in listing order.
	results []*result
}

// result is one instance's evaluation.
type result struct {
	facts    *Facts
	findings []rules.Finding
	unknown  []rules.Unknown
	rules    []string // rules whose remediations make up set
	set      Set
}

// gather reaches every account, lists every region's instances and evaluates the policy
// on each. A scope that fails carries its error; the others go on.
func (f *Fleet) gather(ctx context.Context) []*scope {
	roles := f.opts.RoleARNs
	if len(roles) == 0 {
		roles = []string{""}
	}
	var (
		mu     sync.Mutex
		scopes []*scope
		wg     sync.WaitGroup
		sem    = make(chan struct{}, f.opts.Parallel)
	)
	add := func(s *scope) {
		mu.Lock()
		scopes = append(scopes, s)
		mu.Unlock()
	}
	for _, role := range roles {
		wg.Go(func() {
			conn, err := f.opts.Cloud.Account(ctx, role)
			if err != nil {
				add(&scope{Scope: Scope{Account: accountOfRole(role), RoleARN: role, Error: err.Error()}})
				return
			}
			regions, err := f.regions(ctx, conn)
			if err != nil {
				add(&scope{Scope: Scope{Account: conn.ID(), RoleARN: role, Error: err.Error()}})
				return
			}
			for _, region := range regions {
				wg.Go(func() {
					sem <- struct{}{}
					defer func() { <-sem }()
					stats := &Stats{}
					s := &scope{Scope: Scope{Account: conn.ID(), RoleARN: role, Region: region}, stats: stats,
						api: newPaced(conn.Region(region), f.opts.Rates, stats)}
					f.read(ctx, s)
					add(s)
				})
			}
		})
	}
	wg.Wait()
	slices.SortFunc(scopes, func(a, b *scope) int {
		return strings.Compare(a.Account+"/"+a.RoleARN+"/"+a.Region, b.Account+"/"+b.RoleARN+"/"+b.Region)
	})
	return scopes
}

// accountOfRole is the account ID in a role ARN (arn:aws:iam::ID:role/NAME), or "".
func accountOfRole(arn string) string {
	parts := strings.Split(arn, ":")
	if len(parts) >= 6 && parts[2] == "iam" {
		return parts[4]
	}
	return ""
}

func (f *Fleet) regions(ctx context.Context, conn Conn) ([]string, error) {
	if !slices.Equal(f.opts.Regions, []string{"all"}) {
		return f.opts.Regions, nil
	}
	regions, err := conn.Regions(ctx)
	if err != nil {
		return nil, fmt.Errorf("list regions (DescribeRegions): %w", err)
	}
	return regions, nil
}

// liveStates are the instance states listed: terminated and shutting-down instances have
// no metadata service to mend.
var liveStates = Filter{Name: "instance-state-name", Values: []string{"pending", "running", "stopping", "stopped"}}

// maxPage is DescribeInstances' largest page.
const maxPage = 1000

// read lists one scope's instances, with the account defaults and AMIs that explain their
// options, and evaluates the policy on each.
func (f *Fleet) read(ctx context.Context, s *scope) {
	defer func() { s.Calls = s.stats.Calls.Load() }()
	defaults, err := s.api.MetadataDefaults(ctx)
	if err == nil {
		defaults.Known = true
	}
	var instances []Instance
	in := DescribeInput{Filters: append(slices.Clone(f.opts.Filters), liveStates), MaxResults: maxPage}
	for {
		page, err := s.api.DescribeInstances(ctx, in)
		s.Pages++
		if err != nil {
			s.Error = fmt.Sprintf("DescribeInstances (page %d): %v", s.Pages, err)
			return
		}
		if s.Account == "" {
			s.Account = page.OwnerID
		}
		instances = append(instances, page.Instances...)
		if page.NextToken == "" {
			break
		}
		if page.NextToken == in.NextToken {
			s.Error = fmt.Sprintf("DescribeInstances (page %d): the API returned the same NextToken again", s.Pages)
			return
		}
		in.NextToken = page.NextToken
	}
	s.Instances = len(instances)
	support := f.imageSupport(ctx, s, instances)
	account := &Account{ID: s.Account, RoleARN: s.RoleARN, Defaults: defaults}
	// The account and region are the same for every instance of the scope: converted once,
	// they leave the instance alone to convert per evaluation.
	ev, err := newScopeValues(account, s.Region)
	if err != nil {
		s.Error = err.Error()
		return
	}
	for i := range instances {
		inst := &instances[i]
		inst.ContainerTag = containerTag(inst.Tags)
		inst.ContainerHost = inst.ContainerTag != ""
		inst.ImageIMDSSupport = support[inst.ImageID]
		fa := &Facts{Instance: inst, Account: account, Region: s.Region}
		val, err := ev.value(inst)
		if err != nil {
			s.results = append(s.results, &result{facts: fa, unknown: []rules.Unknown{{Rule: "*", Reason: err.Error()}}})
			continue
		}
		if r := f.evaluateValue(fa, val); r != nil {
			s.results = append(s.results, r)
		}
	}
}

// imagesPerCall bounds the image IDs of one DescribeImages request.
const imagesPerCall = 200

// imageSupport reads the ImdsSupport of the instances' AMIs. AMIs that are gone or not
// shared with the account are left out; a failed call costs only the explanation.
func (f *Fleet) imageSupport(ctx context.Context, s *scope, instances []Instance) map[string]string {
	var ids []string
	seen := map[string]bool{}
	for _, inst := range instances {
		if inst.ImageID != "" && !seen[inst.ImageID] {
			seen[inst.ImageID] = true
			ids = append(ids, inst.ImageID)
		}
	}
	support := map[string]string{}
	for chunk := range slices.Chunk(ids, imagesPerCall) {
		m, err := s.api.ImageIMDSSupport(ctx, chunk)
		if err != nil {
			break
		}
		for k, v := range m {
			support[k] = v
		}
	}
	return support
}

// evaluate runs the policy on one instance; nil when nothing fired and nothing is unknown.
func (f *Fleet) evaluate(fa *Facts) *result {
	val, err := Value(fa)
	if err != nil {
		return &result{facts: fa, unknown: []rules.Unknown{{Rule: "*", Reason: err.Error()}}}
	}
	return f.evaluateValue(fa, val)
}

func (f *Fleet) evaluateValue(fa *Facts, val cty.Value) *result {
	res := f.opts.Policy.Evaluate(val, f.opts.Only)
	if len(res.Findings) == 0 && len(res.Unknown) == 0 {
		return nil
	}
	r := &result{facts: fa, findings: res.Findings, unknown: res.Unknown}
	for _, req := range res.Requests {
		if req.Kind != KindMetadataOptions {
			continue
		}
		before := r.set
		r.set = merge(r.set, decodeSet(req.Args))
		if r.set != before {
			r.rules = append(r.rules, req.Rule)
		}
	}
	r.set = r.set.Minus(fa.Instance.Options)
	if r.set.Empty() {
		r.rules = nil
	}
	return r
}

// decodeSet reads a metadata_options block's arguments; null ones are left unset.
func decodeSet(args cty.Value) Set {
	str := func(name string) string {
		v := args.GetAttr(name)
		if v.IsNull() || !v.IsKnown() {
			return ""
		}
		return v.AsString()
	}
	var s Set
	s.HTTPEndpoint, s.HTTPTokens, s.HTTPIPv6, s.MetadataTags = str("http_endpoint"), str("http_tokens"), str("http_protocol_ipv6"), str("instance_metadata_tags")
	if v := args.GetAttr("hop_limit"); !v.IsNull() && v.IsKnown() {
		n, _ := v.AsBigFloat().Int64()
		s.HopLimit = int(n)
	}
	return s
}

// merge adds b's values to a: the first rule to set an option decides it, except the hop
// limit, where the highest wins (a lower one would break what asked for the higher).
func merge(a, b Set) Set {
	a.HTTPEndpoint = cmp.Or(a.HTTPEndpoint, b.HTTPEndpoint)
	a.HTTPTokens = cmp.Or(a.HTTPTokens, b.HTTPTokens)
	a.HTTPIPv6 = cmp.Or(a.HTTPIPv6, b.HTTPIPv6)
	a.MetadataTags = cmp.Or(a.MetadataTags, b.MetadataTags)
	a.HopLimit = max(a.HopLimit, b.HopLimit)
	return a
}

// ErrNoRegion is returned when no region is named and the configuration gives none.
var ErrNoRegion = errors.New("no region: give --regions (a list, or all) or set AWS_REGION")
