package fleet

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/imdsmend/imdsmend/internal/ec2api"
)

// Cloud reaches the accounts of a fleet. The EC2 API (AWS) is the real one; tests use fakes.
type Cloud interface {
	// Account reaches the account roleARN names (sts:AssumeRole), or the caller's own
	// account when roleARN is "".
	Account(ctx context.Context, roleARN string) (Conn, error)
}

// Conn is one account, reached.
type Conn interface {
	// ID is the account ID; "" when it could not be learnt (no role ARN and no
	// sts:GetCallerIdentity).
	ID() string
	// Regions lists the regions enabled for the account (DescribeRegions).
	Regions(ctx context.Context) ([]string, error)
	// Region is the EC2 API of the account in region. Every call of a Fleet run through
	// it is paced by the run's limiter for this account and region.
	Region(region string) RegionAPI
}

// RegionAPI is the EC2 API calls imdsmend fleet makes in one account and region.
type RegionAPI interface {
	// DescribeInstances returns one page. IDs, when given, replace Filters.
	DescribeInstances(ctx context.Context, in DescribeInput) (DescribePage, error)
	// MetadataDefaults is GetInstanceMetadataDefaults.
	MetadataDefaults(ctx context.Context) (Defaults, error)
	// ImageIMDSSupport is DescribeImages' ImdsSupport by image ID, for the images that
	// still exist and are visible.
	ImageIMDSSupport(ctx context.Context, imageIDs []string) (map[string]string, error)
	// Modify changes the instance's metadata options as the API wants it done: a dry run
	// (permission and validity, nothing changed), ModifyInstanceMetadataOptions, then
	// DescribeInstances until the options are applied, within a bound. Nil options with an
	// error: nothing was changed; options with an error: the change was accepted but not
	// seen applied, and must be recorded as made.
	Modify(ctx context.Context, instanceID string, set Set) (*Options, error)
}

// DescribeInput is one DescribeInstances request.
type DescribeInput struct {
	Filters    []Filter
	IDs        []string
	NextToken  string
	MaxResults int
}

// DescribePage is one page of DescribeInstances.
type DescribePage struct {
	Instances []Instance
	// OwnerID is the account the reservations belong to, when the page had any.
	OwnerID   string
	NextToken string
}

// Filter is one DescribeInstances filter.
type Filter struct {
	Name   string
	Values []string
}

// ParseFilter reads --filter: tag:KEY=VALUE, tag-key=KEY, or NAME=V1,V2 for any
// DescribeInstances filter.
func ParseFilter(s string) (Filter, error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return Filter{}, errors.New("a filter is NAME=VALUE, e.g. tag:Team=web or instance-type=t3.micro")
	}
	if strings.HasPrefix(name, "tag:") {
		// A tag value may itself hold commas.
		return Filter{Name: name, Values: []string{value}}, nil
	}
	return Filter{Name: name, Values: strings.Split(value, ",")}, nil
}

// Set is what one ModifyInstanceMetadataOptions call sets; empty fields stay as they are.
type Set struct {
	HTTPEndpoint string `json:"http_endpoint,omitempty"`
	HTTPTokens   string `json:"http_tokens,omitempty"`
	HopLimit     int    `json:"hop_limit,omitempty"`
	HTTPIPv6     string `json:"http_protocol_ipv6,omitempty"`
	MetadataTags string `json:"instance_metadata_tags,omitempty"`
}

// Empty reports whether s sets nothing.
func (s Set) Empty() bool { return s == Set{} }

// HeldBy is the part of s that o still holds: the values apply set that nobody has
// changed since.
func (s Set) HeldBy(o Options) Set {
	var held Set
	if s.HTTPEndpoint != "" && o.HTTPEndpoint == s.HTTPEndpoint {
		held.HTTPEndpoint = s.HTTPEndpoint
	}
	if s.HTTPTokens != "" && o.HTTPTokens == s.HTTPTokens {
		held.HTTPTokens = s.HTTPTokens
	}
	if s.HopLimit != 0 && o.HopLimit == s.HopLimit {
		held.HopLimit = s.HopLimit
	}
	if s.HTTPIPv6 != "" && o.HTTPIPv6 == s.HTTPIPv6 {
		held.HTTPIPv6 = s.HTTPIPv6
	}
	if s.MetadataTags != "" && o.MetadataTags == s.MetadataTags {
		held.MetadataTags = s.MetadataTags
	}
	return held
}

// Minus is s without what o already has: what a call must still change.
func (s Set) Minus(o Options) Set {
	if s.HTTPEndpoint == o.HTTPEndpoint {
		s.HTTPEndpoint = ""
	}
	if s.HTTPTokens == o.HTTPTokens {
		s.HTTPTokens = ""
	}
	if s.HopLimit == o.HopLimit {
		s.HopLimit = 0
	}
	if s.HTTPIPv6 == o.HTTPIPv6 {
		s.HTTPIPv6 = ""
	}
	if s.MetadataTags == o.MetadataTags {
		s.MetadataTags = ""
	}
	return s
}

// Inverse is what puts back the values of before that s changes.
func (s Set) Inverse(before Options) Set {
	var inv Set
	if s.HTTPEndpoint != "" {
		inv.HTTPEndpoint = before.HTTPEndpoint
	}
	if s.HTTPTokens != "" {
		inv.HTTPTokens = before.HTTPTokens
	}
	if s.HopLimit != 0 {
		inv.HopLimit = before.HopLimit
	}
	if s.HTTPIPv6 != "" {
		inv.HTTPIPv6 = before.HTTPIPv6
	}
	if s.MetadataTags != "" {
		inv.MetadataTags = before.MetadataTags
	}
	return inv
}

// Args is s as AWS CLI arguments, for the change's detail.
func (s Set) Args() string {
	var b strings.Builder
	add := func(flag, v string) {
		if v != "" {
			b.WriteString(" --" + flag + " " + v)
		}
	}
	add("http-endpoint", s.HTTPEndpoint)
	add("http-tokens", s.HTTPTokens)
	if s.HopLimit != 0 {
		add("http-put-response-hop-limit", strconv.Itoa(s.HopLimit))
	}
	add("http-protocol-ipv6", s.HTTPIPv6)
	add("instance-metadata-tags", s.MetadataTags)
	return strings.TrimPrefix(b.String(), " ")
}

// Error codes of the EC2 API that change what imdsmend does.
const (
	CodeNotFound     = "InvalidInstanceID.NotFound"
	CodeUnauthorized = "UnauthorizedOperation"
)

// APIError is an error the API answered with a code.
type APIError struct {
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// ErrorCode is the API error code in err's chain, or "".
func ErrorCode(err error) string {
	if ae, ok := errors.AsType[*APIError](err); ok {
		return ae.Code
	}
	if e, ok := errors.AsType[*ec2api.Error](err); ok {
		return e.Code
	}
	return ""
}

// gone reports whether err says the instance no longer exists.
func gone(err error) bool {
	return ErrorCode(err) == CodeNotFound || ec2api.KindOf(err) == ec2api.KindNotFound
}

// explain is err's message with, for an ec2api error, who must change what.
func explain(err error) string {
	if e, ok := errors.AsType[*ec2api.Error](err); ok && e.Hint() != "" {
		return e.Error() + "; " + e.Hint()
	}
	return err.Error()
}

// containerTags are tag keys (or, ending in /, key prefixes) that EKS managed node groups,
// eksctl, Karpenter, the cluster autoscaler and ECS put on container hosts.
var containerTags = []string{
	"eks:cluster-name", "eks:nodegroup-name", "aws:eks:cluster-name", "alpha.eksctl.io/cluster-name",
	"karpenter.sh/nodepool", "karpenter.sh/provisioner-name", "kubernetes.io/cluster/",
	"k8s.io/cluster-autoscaler/enabled", "AmazonECSManaged", "aws:ecs:clusterName", "aws:ecs:serviceName",
}

// containerTag is the first tag key that marks a container host, or "".
func containerTag(tags map[string]string) string {
	for _, want := range containerTags {
		for k := range tags {
			if k == want || strings.HasSuffix(want, "/") && strings.HasPrefix(k, want) {
				return k
			}
		}
	}
	return ""
}
