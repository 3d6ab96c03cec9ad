package fleet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
)

// fakeCloud is an in-memory EC2: accounts by role ARN ("" is the caller's own), each with
// regions of instances.
type fakeCloud struct {
	accounts map[string]*fakeAccount
}

type fakeAccount struct {
	id      string
	err     error // AssumeRole fails
	regions map[string]*fakeRegion
}

type fakeRegion struct {
	mu        sync.Mutex
	instances []Instance
	defaults  Defaults
	images    map[string]string
	err       error // every call fails (an unreachable region)
	// beforeModify runs before each ModifyInstanceMetadataOptions, dry runs included.
	beforeModify      func(r *fakeRegion, id string, dryRun bool) error
	modifies, dryRuns int
}

func (c *fakeCloud) Account(_ context.Context, role string) (Conn, error) {
	a, ok := c.accounts[role]
	if !ok {
		return nil, &APIError{Code: "AccessDenied", Message: "not authorized to perform sts:AssumeRole on " + role}
	}
	if a.err != nil {
		return nil, a.err
	}
	return a, nil
}

func (a *fakeAccount) ID() string { return a.id }

func (a *fakeAccount) Regions(context.Context) ([]string, error) {
	return slices.Sorted(maps.Keys(a.regions)), nil
}

func (a *fakeAccount) Region(region string) RegionAPI {
	if r, ok := a.regions[region]; ok {
		return r
	}
	return &fakeRegion{err: fmt.Errorf("dial tcp: lookup ec2.%s.amazonaws.com: no such host", region)}
}

func (r *fakeRegion) DescribeInstances(_ context.Context, in DescribeInput) (DescribePage, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return DescribePage{}, r.err
	}
	if len(in.IDs) > 0 {
		var out []Instance
		for _, id := range in.IDs {
			if i := r.index(id); i >= 0 {
				out = append(out, r.instances[i])
			}
		}
		return DescribePage{Instances: out}, nil
	}
	start := 0
	if in.NextToken != "" {
		start, _ = strconv.Atoi(in.NextToken)
	}
	size := in.MaxResults
	if size <= 0 || size > 1000 {
		size = 1000
	}
	var match []Instance
	for _, inst := range r.instances {
		if matches(inst, in.Filters) {
			match = append(match, inst)
		}
	}
	end := min(start+size, len(match))
	page := DescribePage{Instances: slices.Clone(match[start:end]), OwnerID: "fake-owner"}
	if end < len(match) {
		page.NextToken = strconv.Itoa(end)
	}
	return page, nil
}

func matches(inst Instance, filters []Filter) bool {
	for _, f := range filters {
		var v string
		switch {
		case f.Name == "instance-state-name":
			v = inst.State
		case len(f.Name) > 4 && f.Name[:4] == "tag:":
			v = inst.Tags[f.Name[4:]]
		default:
			continue
		}
		if !slices.Contains(f.Values, v) {
			return false
		}
	}
	return true
}

func (r *fakeRegion) index(id string) int {
	return slices.IndexFunc(r.instances, func(i Instance) bool { return i.ID == id })
}

func (r *fakeRegion) MetadataDefaults(context.Context) (Defaults, error) {
	if r.err != nil {
		return Defaults{}, r.err
	}
	return r.defaults, nil
}

func (r *fakeRegion) ImageIMDSSupport(_ context.Context, ids []string) (map[string]string, error) {
	out := map[string]string{}
	for _, id := range ids {
		if v, ok := r.images[id]; ok {
			out[id] = v
		}
	}
	return out, nil
}

// Modify is a dry run, the call, and polls until applied, as ec2api.Client.Modify.
func (r *fakeRegion) Modify(_ context.Context, id string, set Set) (*Options, error) {
	for _, dryRun := range []bool{true, false} {
		if r.beforeModify != nil {
			if err := r.beforeModify(r, id, dryRun); err != nil {
				return nil, err
			}
		}
		r.mu.Lock()
		err := r.check(id, set)
		if err == nil && dryRun {
			r.dryRuns++
		}
		r.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.modifies++
	o := &r.instances[r.index(id)].Options
	o.HTTPEndpoint = cmp.Or(set.HTTPEndpoint, o.HTTPEndpoint)
	o.HTTPTokens = cmp.Or(set.HTTPTokens, o.HTTPTokens)
	o.HTTPIPv6 = cmp.Or(set.HTTPIPv6, o.HTTPIPv6)
	o.MetadataTags = cmp.Or(set.MetadataTags, o.MetadataTags)
	if set.HopLimit != 0 {
		o.HopLimit = set.HopLimit
	}
	o.State = "applied"
	after := *o
	return &after, nil
}

// check is what the API checks before a change.
func (r *fakeRegion) check(id string, set Set) error {
	if r.err != nil {
		return r.err
	}
	if r.index(id) < 0 {
		return &APIError{Code: CodeNotFound, Message: fmt.Sprintf("The instance ID '%s' does not exist", id)}
	}
	if set.HopLimit < 0 || set.HopLimit > 64 {
		return &APIError{Code: "InvalidParameterValue", Message: "hop limit out of range"}
	}
	return nil
}

// remove deletes an instance, as if it were terminated.
func (r *fakeRegion) remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i := r.index(id); i >= 0 {
		r.instances = slices.Delete(r.instances, i, i+1)
	}
}

func (r *fakeRegion) options(id string) Options {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.instances[r.index(id)].Options
}

var errUnreachable = errors.New("dial tcp 10.0.0.1:443: connect: connection refused")

// healthy are an instance's options the default policy accepts.
func healthy() Options {
	return Options{HTTPEndpoint: "enabled", HTTPTokens: "required", HopLimit: 2, HTTPIPv6: "disabled", MetadataTags: "disabled", State: "applied"}
}

func inst(id, name string, mod func(*Instance)) Instance {
	i := Instance{ID: id, Name: name, State: "running", Tags: map[string]string{"Name": name}, ImageID: "ami-1", Options: healthy()}
	if mod != nil {
		mod(&i)
	}
	return i
}
