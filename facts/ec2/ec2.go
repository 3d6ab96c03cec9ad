// Package ec2 reads the instance's metadata options and the account's defaults through
// the EC2 API (internal/ec2api), only when the policy allows EC2 API calls. A healthy
// run costs at most one DescribeInstances: the answer is kept in state.json (key "ec2")
// for settings.ec2.interval, and a fixer that changes the options forgets it.
package ec2

import (
	"context"
	"errors"
	"time"

	"github.com/imdsmend/imdsmend/facts/identity"
	"github.com/imdsmend/imdsmend/internal/ec2api"
	"github.com/imdsmend/imdsmend/internal/paths"
)

// EC2 is facts.ec2.
type EC2 struct {
	InstanceID       string                  `cty:"instance_id" json:"instance_id" doc:"The instance asked about (facts.identity.instance_id)."`
	Region           string                  `cty:"region" json:"region" doc:"The region called (facts.identity.region)."`
	CredentialsFound bool                    `cty:"credentials_found" json:"credentials_found" doc:"A credential source had credentials."`
	Credentials      string                  `cty:"credentials" json:"credentials" doc:"Where the credentials came from, as the SDK names the source: EnvConfigCredentials, SharedConfigCredentials: FILE, WebIdentityCredentials, AssumeRoleProvider, EC2RoleProvider (IMDS), …; empty when none was found."`
	WithoutIMDS      bool                    `cty:"without_imds" json:"without_imds" doc:"The instance role (through IMDS) was left out of the credential sources, because IMDS was not answering."`
	RoleARN          string                  `cty:"role_arn" json:"role_arn" doc:"settings.ec2.role_arn, assumed with the credentials found; empty when none."`
	MetadataOptions  *ec2api.MetadataOptions `cty:"metadata_options" json:"metadata_options" doc:"The instance's MetadataOptions (DescribeInstances); null when they could not be read (see errors)."`
	InstanceState    string                  `cty:"instance_state" json:"instance_state" doc:"The instance's state: running, stopping, …"`
	ImageID          string                  `cty:"image_id" json:"image_id" doc:"The AMI the instance was launched from."`
	ImageIMDSSupport string                  `cty:"image_imds_support" json:"image_imds_support" doc:"The AMI's ImdsSupport: \"v2.0\" makes its instances IMDSv2-only by default; empty when it sets nothing. Read only when http_tokens is optional."`
	IPv6             []string                `cty:"ipv6" json:"ipv6" doc:"The instance's IPv6 addresses."`
	Tags             map[string]string       `cty:"tags" json:"tags" doc:"The instance's tags."`
	Defaults         *ec2api.Defaults        `cty:"defaults" json:"defaults" doc:"The account's instance metadata defaults in the region (GetInstanceMetadataDefaults); null when they could not be read."`
	Errors           []Error                 `cty:"errors" json:"errors" doc:"The calls that failed, each with its kind and who must change what."`
	Cached           bool                    `cty:"cached" json:"cached" doc:"These values come from state.json, kept from an earlier run within settings.ec2.interval; no call was made."`
	FetchedAt        string                  `cty:"fetched_at" json:"fetched_at" doc:"When the API was asked (RFC 3339)."`
}

// Error is one failed call.
type Error struct {
	Op      string `cty:"op" json:"op" doc:"The call: DescribeInstances, GetInstanceMetadataDefaults, DescribeImages, or Authenticate (finding credentials) and Configure."`
	Kind    string `cty:"kind" json:"kind" doc:"no_region, no_credentials, auth_failure, unauthorized, instance_not_found, throttled, malformed_response, unreachable, … (docs/ec2-api.md)."`
	Code    string `cty:"code" json:"code" doc:"The API's error code, e.g. UnauthorizedOperation; empty when none came back."`
	Message string `cty:"message" json:"message" doc:"What went wrong."`
	Hint    string `cty:"hint" json:"hint" doc:"Who must change what."`
}

// API is what the probe calls; *ec2api.Client is one.
type API interface {
	Credentials(ctx context.Context) (string, error)
	Describe(ctx context.Context, id string) (*ec2api.Instance, error)
	Defaults(ctx context.Context) (*ec2api.Defaults, error)
	ImageIMDSSupport(ctx context.Context, imageID string) (string, error)
}

// Config is what Gather needs.
type Config struct {
	Paths    paths.Paths
	Identity *identity.Identity
	// RoleARN is settings.ec2.role_arn.
	RoleARN string
	// WithoutIMDS leaves the instance role out of the credential sources.
	WithoutIMDS bool
	// CacheFor is how long an answer kept in state.json stands in for a call.
	CacheFor time.Duration
	Now      time.Time
	// New builds the client; nil builds an *ec2api.Client.
	New func(ctx context.Context, cfg ec2api.Config) (API, error)
}

// Gather asks the API, or takes a fresh answer from state.json. Failed calls are listed
// in Errors rather than failing the probe: "no credentials" is a fact the rules report.
func Gather(ctx context.Context, cfg Config) (*EC2, error) {
	id := cfg.Identity
	if id == nil {
		id = &identity.Identity{}
	}
	e := &EC2{InstanceID: id.InstanceID, Region: id.Region, RoleARN: cfg.RoleARN, WithoutIMDS: cfg.WithoutIMDS,
		IPv6: []string{}, Tags: map[string]string{}, Errors: []Error{}}
	if e.InstanceID == "" {
		e.fail(&ec2api.Error{Kind: ec2api.KindNotFound, Op: "identity",
			Message: "the instance ID is unknown: no DMI asset tag, cloud-init report or IMDS answer names it"})
		return e, nil
	}
	if kept, ok := load(cfg, e); ok {
		return kept, nil
	}
	newAPI := cfg.New
	if newAPI == nil {
		newAPI = func(ctx context.Context, c ec2api.Config) (API, error) { return ec2api.New(ctx, c) }
	}
	api, err := newAPI(ctx, ec2api.Config{Region: e.Region, NoIMDS: cfg.WithoutIMDS, RoleARN: cfg.RoleARN})
	if err != nil {
		e.fail(err)
		return e, nil
	}
	e.FetchedAt = cfg.Now.UTC().Format(time.RFC3339)
	if e.Credentials, err = api.Credentials(ctx); err != nil {
		e.fail(err)
		return e, nil
	}
	e.CredentialsFound = true
	if in, err := api.Describe(ctx, e.InstanceID); err != nil {
		e.fail(err)
	} else {
		e.MetadataOptions, e.InstanceState, e.ImageID = &in.MetadataOptions, in.State, in.ImageID
		e.Tags, e.IPv6 = in.Tags, append(e.IPv6, in.IPv6...)
		if in.MetadataOptions.HTTPTokens == "optional" && in.ImageID != "" {
			if e.ImageIMDSSupport, err = api.ImageIMDSSupport(ctx, in.ImageID); err != nil {
				e.fail(err)
			}
		}
	}
	if d, err := api.Defaults(ctx); err != nil {
		e.fail(err)
	} else {
		e.Defaults = d
	}
	if len(e.Errors) == 0 {
		save(cfg, e)
	}
	return e, nil
}

// fail records a failed call.
func (e *EC2) fail(err error) {
	var ae *ec2api.Error
	if !errors.As(err, &ae) {
		e.Errors = append(e.Errors, Error{Kind: string(ec2api.KindOther), Message: err.Error()})
		return
	}
	e.Errors = append(e.Errors, Error{Op: ae.Op, Kind: string(ae.Kind), Code: ae.Code, Message: ae.Message, Hint: ae.Hint()})
}
