// Package fleet audits and mends the instance metadata options of many EC2 instances —
// across regions and accounts, through the EC2 API, from a workstation or a CI job — with
// the same HCL policy language as the on-instance checks: the rules read one instance's
// facts (instance, account, region) at a time. docs/fleet.md is its guide.
package fleet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/rules"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/gocty"
)

// Facts is what a fleet policy's rules read about one instance, as the variable facts.
// The cty and doc tags drive the policy's type and the table in docs/fleet.md.
type Facts struct {
	Instance *Instance `cty:"instance" json:"instance" doc:"The instance, as DescribeInstances returned it."`
	Account  *Account  `cty:"account" json:"account" doc:"The account the instance runs in, and its metadata defaults in this region."`
	Region   string    `cty:"region" json:"region" doc:"The instance's region, e.g. eu-central-1."`
}

// Instance is one instance's identity, tags and metadata options.
type Instance struct {
	ID    string            `cty:"id" json:"id" doc:"Instance ID, e.g. i-0123456789abcdef0."`
	Name  string            `cty:"name" json:"name" doc:"Its Name tag; empty when it has none."`
	State string            `cty:"state" json:"state" doc:"pending, running, stopping or stopped (terminated instances are not listed)."`
	Tags  map[string]string `cty:"tags" json:"tags" doc:"Its tags by key."`
	// ContainerHost is derived from well-known tags, so the default policy need not list them.
	ContainerHost bool   `cty:"container_host" json:"container_host" doc:"It carries a tag that EKS node groups, Karpenter or ECS put on container hosts (container_tag says which)."`
	ContainerTag  string `cty:"container_tag" json:"container_tag" doc:"The tag key that made container_host true; empty otherwise."`
	IPv6          bool   `cty:"ipv6" json:"ipv6" doc:"One of its network interfaces has an IPv6 address."`
	ImageID       string `cty:"image_id" json:"image_id" doc:"The AMI it was launched from."`
	// ImageIMDSSupport explains HttpTokens: an AMI with ImdsSupport v2.0 launches instances with tokens required.
	ImageIMDSSupport string  `cty:"image_imds_support" json:"image_imds_support" doc:"The AMI's ImdsSupport: \"v2.0\" (instances launch with tokens required) or \"\" (not set, or the AMI is gone or not visible)."`
	Options          Options `cty:"metadata_options" json:"metadata_options" doc:"Its MetadataOptions."`
}

// Options are an instance's metadata options (InstanceMetadataOptionsResponse).
type Options struct {
	HTTPEndpoint string `cty:"http_endpoint" json:"http_endpoint" doc:"HttpEndpoint: enabled or disabled."`
	HTTPTokens   string `cty:"http_tokens" json:"http_tokens" doc:"HttpTokens: optional (IMDSv1 allowed) or required."`
	HopLimit     int    `cty:"hop_limit" json:"hop_limit" doc:"HttpPutResponseHopLimit, 1 to 64."`
	HTTPIPv6     string `cty:"http_protocol_ipv6" json:"http_protocol_ipv6" doc:"HttpProtocolIpv6: enabled or disabled."`
	MetadataTags string `cty:"instance_metadata_tags" json:"instance_metadata_tags" doc:"InstanceMetadataTags: enabled or disabled."`
	State        string `cty:"state" json:"state" doc:"pending (a change is not in effect yet) or applied."`
}

// Account is the account an instance runs in.
type Account struct {
	ID       string   `cty:"id" json:"id" doc:"Account ID."`
	RoleARN  string   `cty:"role_arn" json:"role_arn" doc:"The role imdsmend assumed to reach it; empty for the caller's own account."`
	Defaults Defaults `cty:"defaults" json:"defaults" doc:"The account's instance metadata defaults in this region (GetInstanceMetadataDefaults): what new instances launch with when neither the launch nor the AMI says."`
}

// Defaults are an account's instance metadata defaults in a region; empty strings and 0
// mean "no preference".
type Defaults struct {
	HTTPEndpoint string `cty:"http_endpoint" json:"http_endpoint" doc:"Default HttpEndpoint; empty for no preference."`
	HTTPTokens   string `cty:"http_tokens" json:"http_tokens" doc:"Default HttpTokens; empty for no preference."`
	HopLimit     int    `cty:"hop_limit" json:"hop_limit" doc:"Default HttpPutResponseHopLimit; 0 for no preference (-1 in the API)."`
	MetadataTags string `cty:"instance_metadata_tags" json:"instance_metadata_tags" doc:"Default InstanceMetadataTags; empty for no preference."`
	ManagedBy    string `cty:"managed_by" json:"managed_by" doc:"\"declarative-policy\" when an AWS Organizations declarative policy sets them (then only the organization can change them), else \"account\"."`
	Known        bool   `cty:"known" json:"known" doc:"The defaults were read; false when GetInstanceMetadataDefaults was refused or failed."`
}

// Type is the cty type of a fleet policy's facts variable.
var Type = sync.OnceValue(func() cty.Type { return facts.TypeOf(Facts{}) })

// Value converts f into the value of a fleet policy's facts variable.
func Value(f *Facts) (cty.Value, error) { return facts.ValueOf(f, Type()) }

// scopeValues builds the facts values of one account and region's instances.
type scopeValues struct {
	account, region cty.Value
}

func newScopeValues(a *Account, region string) (*scopeValues, error) {
	account, err := gocty.ToCtyValue(a, Type().AttributeType("account"))
	if err != nil {
		return nil, fmt.Errorf("convert the account's facts: %w", err)
	}
	return &scopeValues{account: account, region: cty.StringVal(region)}, nil
}

// value is Value(&Facts{inst, the account, the region}), without converting the account
// again; an instance's tags must not be nil (the API layer makes them).
func (sv *scopeValues) value(inst *Instance) (cty.Value, error) {
	if inst.Tags == nil {
		inst.Tags = map[string]string{}
	}
	iv, err := gocty.ToCtyValue(inst, Type().AttributeType("instance"))
	if err != nil {
		return cty.NilVal, fmt.Errorf("convert instance %s's facts: %w", inst.ID, err)
	}
	return cty.ObjectVal(map[string]cty.Value{"instance": iv, "account": sv.account, "region": sv.region}), nil
}

// Fields lists every attribute of the fleet facts schema, for docs/fleet.md.
func Fields() []facts.Field { return facts.FieldsOf(Facts{}, "facts") }

// Schema is the fleet facts for rules.Load: policies and their tests read them.
var Schema = sync.OnceValue(func() *rules.Schema {
	return &rules.Schema{Type: Type(), Decode: func(data []byte) (cty.Value, error) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var f Facts
		if err := dec.Decode(&f); err != nil {
			return cty.NilVal, fmt.Errorf("facts do not fit the fleet facts schema (docs/fleet.md): %w", err)
		}
		return Value(&f)
	}}
})

// FieldsTable renders the fleet facts as the Markdown table docs/fleet.md holds (a test
// keeps them equal).
func FieldsTable() string {
	var b strings.Builder
	b.WriteString("| attribute | type | meaning |\n| --- | --- | --- |\n")
	for _, f := range Fields() {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", f.Path, f.Type, strings.ReplaceAll(f.Doc, "|", `\|`))
	}
	return b.String()
}
