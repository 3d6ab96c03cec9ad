package ec2api

import (
	"context"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// MetadataOptions are an instance's IMDS settings as the API reports them.
type MetadataOptions struct {
	// State is "pending" while a change is being applied, then "applied".
	State string `cty:"state" json:"state" doc:"\"pending\" while a change is being applied, then \"applied\"."`
	// HTTPEndpoint is "enabled" or "disabled".
	HTTPEndpoint string `cty:"http_endpoint" json:"http_endpoint" doc:"HttpEndpoint: \"enabled\" or \"disabled\" (then IMDS answers 403)."`
	// HTTPTokens is "optional" (IMDSv1 allowed) or "required".
	HTTPTokens string `cty:"http_tokens" json:"http_tokens" doc:"HttpTokens: \"optional\" (IMDSv1 allowed) or \"required\" (IMDSv2 only)."`
	// HopLimit is HttpPutResponseHopLimit, 1 to 64; 0 when the API left it out.
	HopLimit int `cty:"hop_limit" json:"hop_limit" doc:"HttpPutResponseHopLimit, 1 to 64: how many IP hops the token PUT answer travels (containers behind a bridge need 2)."`
	// HTTPProtocolIPv6 is "enabled" or "disabled" (the IPv6 endpoint).
	HTTPProtocolIPv6 string `cty:"http_protocol_ipv6" json:"http_protocol_ipv6" doc:"HttpProtocolIpv6: \"enabled\" or \"disabled\" (the IPv6 endpoint fd00:ec2::254)."`
	// InstanceMetadataTags is "enabled" or "disabled" (tags in IMDS).
	InstanceMetadataTags string `cty:"instance_metadata_tags" json:"instance_metadata_tags" doc:"\"enabled\" or \"disabled\": instance tags in IMDS."`
}

// Metadata options' states.
const (
	StatePending = "pending"
	StateApplied = "applied"
)

// Instance is what imdsmend reads of one instance.
type Instance struct {
	ID string `json:"id"`
	// State is the instance's state: "running", "stopped", …
	State   string `json:"state"`
	ImageID string `json:"image_id"`
	// IPv6 lists the instance's IPv6 addresses.
	IPv6            []string          `json:"ipv6"`
	Tags            map[string]string `json:"tags"`
	MetadataOptions MetadataOptions   `json:"metadata_options"`
}

const opDescribe = "DescribeInstances"

// Describe reads one instance. A missing instance is an *Error of KindNotFound.
func (c *Client) Describe(ctx context.Context, id string) (*Instance, error) {
	if _, err := c.Credentials(ctx); err != nil {
		return nil, err
	}
	out, err := c.api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return nil, classify(opDescribe, err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if aws.ToString(in.InstanceId) == id {
				return instance(in)
			}
		}
	}
	return nil, &Error{Kind: KindNotFound, Op: opDescribe, Code: "InvalidInstanceID.NotFound",
		Message: "the instance ID '" + id + "' does not exist in " + c.region}
}

// Filter narrows List: Name as in DescribeInstances ("tag:Team", "instance-state-name").
type Filter struct {
	Name   string
	Values []string
}

// List reads every instance matching the filters, page by page.
func (c *Client) List(ctx context.Context, filters ...Filter) ([]*Instance, error) {
	if _, err := c.Credentials(ctx); err != nil {
		return nil, err
	}
	in := &ec2.DescribeInstancesInput{}
	for _, f := range filters {
		in.Filters = append(in.Filters, types.Filter{Name: aws.String(f.Name), Values: f.Values})
	}
	var all []*Instance
	for p := ec2.NewDescribeInstancesPaginator(c.api, in); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			return all, classify(opDescribe, err)
		}
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				got, err := instance(i)
				if err != nil {
					return all, err
				}
				all = append(all, got)
			}
		}
	}
	return all, nil
}

// instance converts the SDK's instance, refusing one without an ID or metadata options.
func instance(in types.Instance) (*Instance, error) {
	if in.InstanceId == nil || in.MetadataOptions == nil {
		return nil, malformed(opDescribe, "an instance without InstanceId or MetadataOptions")
	}
	out := &Instance{
		ID:              aws.ToString(in.InstanceId),
		ImageID:         aws.ToString(in.ImageId),
		Tags:            map[string]string{},
		MetadataOptions: options(in.MetadataOptions),
	}
	if in.State != nil {
		out.State = string(in.State.Name)
	}
	for _, t := range in.Tags {
		out.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	if in.Ipv6Address != nil {
		out.IPv6 = append(out.IPv6, *in.Ipv6Address)
	}
	for _, n := range in.NetworkInterfaces {
		for _, a := range n.Ipv6Addresses {
			if ip := aws.ToString(a.Ipv6Address); ip != "" && !slices.Contains(out.IPv6, ip) {
				out.IPv6 = append(out.IPv6, ip)
			}
		}
	}
	return out, nil
}

func options(o *types.InstanceMetadataOptionsResponse) MetadataOptions {
	return MetadataOptions{
		State:                string(o.State),
		HTTPEndpoint:         string(o.HttpEndpoint),
		HTTPTokens:           string(o.HttpTokens),
		HopLimit:             int(aws.ToInt32(o.HttpPutResponseHopLimit)),
		HTTPProtocolIPv6:     string(o.HttpProtocolIpv6),
		InstanceMetadataTags: string(o.InstanceMetadataTags),
	}
}

// Defaults are the account's instance metadata defaults in the region: what new
// instances get where the AMI and the launch request say nothing. Empty strings and a
// zero HopLimit mean "no preference".
type Defaults struct {
	HTTPEndpoint         string `cty:"http_endpoint" json:"http_endpoint" doc:"The account default for HttpEndpoint; empty for no preference."`
	HTTPTokens           string `cty:"http_tokens" json:"http_tokens" doc:"The account default for HttpTokens (\"required\" makes new instances IMDSv2-only); empty for no preference."`
	HopLimit             int    `cty:"hop_limit" json:"hop_limit" doc:"The account default hop limit; 0 for no preference."`
	InstanceMetadataTags string `cty:"instance_metadata_tags" json:"instance_metadata_tags" doc:"The account default for tags in IMDS; empty for no preference."`
	// HTTPTokensEnforced is "enabled" when launches without IMDSv2 are refused.
	HTTPTokensEnforced string `cty:"http_tokens_enforced" json:"http_tokens_enforced" doc:"\"enabled\" when the account refuses launches and changes that allow IMDSv1."`
	// ManagedBy is "account" or "declarative-policy" (then the account can't change
	// them), with the policy's message.
	ManagedBy               string `cty:"managed_by" json:"managed_by" doc:"\"account\", or \"declarative-policy\" when an AWS Organizations declarative policy sets the defaults (the account cannot change them)."`
	ManagedExceptionMessage string `cty:"managed_exception_message" json:"managed_exception_message" doc:"The declarative policy's message to those it refuses."`
}

const opDefaults = "GetInstanceMetadataDefaults"

// Defaults reads the account's defaults.
func (c *Client) Defaults(ctx context.Context) (*Defaults, error) {
	if _, err := c.Credentials(ctx); err != nil {
		return nil, err
	}
	out, err := c.api.GetInstanceMetadataDefaults(ctx, &ec2.GetInstanceMetadataDefaultsInput{})
	if err != nil {
		return nil, classify(opDefaults, err)
	}
	d := &Defaults{}
	if a := out.AccountLevel; a != nil {
		*d = Defaults{
			HTTPEndpoint:            string(a.HttpEndpoint),
			HTTPTokens:              string(a.HttpTokens),
			HopLimit:                int(aws.ToInt32(a.HttpPutResponseHopLimit)),
			InstanceMetadataTags:    string(a.InstanceMetadataTags),
			HTTPTokensEnforced:      string(a.HttpTokensEnforced),
			ManagedBy:               string(a.ManagedBy),
			ManagedExceptionMessage: aws.ToString(a.ManagedExceptionMessage),
		}
	}
	return d, nil
}

const opImages = "DescribeImages"

// ImageIMDSSupport reads the AMI's ImdsSupport: "v2.0" when instances launched from it
// get HttpTokens=required by default, "" when the AMI sets nothing (or is gone).
func (c *Client) ImageIMDSSupport(ctx context.Context, imageID string) (string, error) {
	if _, err := c.Credentials(ctx); err != nil {
		return "", err
	}
	out, err := c.api.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{imageID}})
	if err != nil {
		if e := classify(opImages, err); e.Code != "InvalidAMIID.NotFound" && e.Code != "InvalidAMIID.Unavailable" {
			return "", e
		}
		return "", nil
	}
	for _, im := range out.Images {
		if aws.ToString(im.ImageId) == imageID {
			return string(im.ImdsSupport), nil
		}
	}
	return "", nil
}
