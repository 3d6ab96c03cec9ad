package fleet

import (
	"os"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/imdsmend/imdsmend/rules"
	"github.com/zclconf/go-cty/cty"
)

// KindMetadataOptions is the one remediation kind of a fleet policy:
// ModifyInstanceMetadataOptions with the arguments the block gives.
const KindMetadataOptions = "metadata_options"

// Limits of `settings { fleet { … } }` when the policy leaves them unset.
const (
	DefaultMaxChanges   = 100
	DefaultMaxErrorRate = 0.05
)

// DefaultPolicyFile is the fleet policy `imdsmend fleet` reads when --policy is not given;
// when it is absent the built-in fleet.hcl takes its place.
const DefaultPolicyFile = "/etc/imdsmend/fleet.hcl"

// BuiltinName names the built-in fleet policy in diagnostics.
const BuiltinName = "<built-in>/fleet.hcl"

// DropInDir holds the fleet policy's drop-ins, beside its main file; the instance policy's
// policy.d/ is not read.
const DropInDir = "fleet.d"

// kinds is the remediation kinds a fleet policy may use.
type kinds struct{}

// Kinds is what rules.Load needs to check a fleet policy's remediate blocks.
var Kinds rules.Kinds = kinds{}

func (kinds) Kinds() []string { return []string{KindMetadataOptions} }

func (kinds) Spec(kind string) (hcldec.Spec, bool) {
	if kind != KindMetadataOptions {
		return nil, false
	}
	// Each argument left out keeps the instance's value (the API's "no change").
	return &hcldec.ObjectSpec{
		"http_endpoint":          &hcldec.AttrSpec{Name: "http_endpoint", Type: cty.String},
		"http_tokens":            &hcldec.AttrSpec{Name: "http_tokens", Type: cty.String},
		"hop_limit":              &hcldec.AttrSpec{Name: "hop_limit", Type: cty.Number},
		"http_protocol_ipv6":     &hcldec.AttrSpec{Name: "http_protocol_ipv6", Type: cty.String},
		"instance_metadata_tags": &hcldec.AttrSpec{Name: "instance_metadata_tags", Type: cty.String},
	}, true
}

// LoadOptions says where the fleet policy comes from.
type LoadOptions struct {
	// MainFile is the fleet policy; drop-ins come from fleet.d/ beside it.
	MainFile string
	// Explicit is set when the user named MainFile, which then must exist.
	Explicit bool
	// Builtin replaces MainFile when it is absent and not Explicit.
	Builtin []byte
	// Open opens policy files; nil is os.Open.
	Open func(path string) (*os.File, error)
}

// LoadPolicy loads and checks a fleet policy: the policy language of docs/policy.md over
// the fleet facts, with metadata_options as its one remediation kind.
func LoadPolicy(opts LoadOptions) (*rules.Policy, hcl.Diagnostics) {
	return rules.Load(rules.LoadOptions{
		MainFile:  opts.MainFile,
		Builtin:   opts.Builtin,
		Explicit:  opts.Explicit,
		Kinds:     Kinds,
		Open:      opts.Open,
		Schema:    Schema(),
		DropInDir: DropInDir,
		// The built-in fleet policy is not the built-in instance policy.
		BuiltinName: BuiltinName,
	})
}

// limits are the policy's fleet limits with the defaults filled in.
func limits(p *rules.Policy) rules.FleetLimits {
	l := p.Settings.Fleet
	if l.MaxChanges == 0 {
		l.MaxChanges = DefaultMaxChanges
	}
	if l.MaxErrorRate == 0 {
		l.MaxErrorRate = DefaultMaxErrorRate
	}
	return l
}
