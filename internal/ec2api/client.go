// Package ec2api is imdsmend's client of the EC2 API: the instance's metadata options
// (DescribeInstances), the account's defaults (GetInstanceMetadataDefaults) and their
// change (ModifyInstanceMetadataOptions: a dry run, the call, then polling until applied).
// It is built on aws-sdk-go-v2, takes its endpoint from the SDK's own variables
// (AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL) and its credentials from LoadAWSConfig's chain,
// less the instance role when asked (IMDS may be what is broken). Every failure is an
// *Error whose Kind the fixer and the fleet turn into findings.
package ec2api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Config says which region to call, with which credentials, and how patiently.
type Config struct {
	// Region is the instance's region; required (the SDK's own region sources may need
	// IMDS, and the caller knows better: facts.identity).
	Region string
	// NoIMDS leaves out every credential source that asks IMDS (the instance role), for
	// when IMDS is what is broken: environment, shared config and credentials files
	// (AWS_PROFILE), web identity remain.
	NoIMDS bool
	// RoleARN, when set, is assumed through STS with the credentials found, and the EC2
	// calls are made as that role.
	RoleARN string
	// Timeout bounds each HTTP request; 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxAttempts bounds the SDK's attempts of one call, which it retries only on
	// throttling and transient failures, with backoff; 0 means DefaultMaxAttempts.
	MaxAttempts int
	// MaxBackoff is the longest wait between two attempts; 0 means DefaultMaxBackoff.
	MaxBackoff time.Duration
	// Poll bounds the wait for a change to be applied; zero fields take DefaultPoll's.
	Poll Poll
}

// Defaults for Config's zero fields.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultMaxAttempts = 5
	DefaultMaxBackoff  = 5 * time.Second
)

// Client calls the EC2 API for one region with one set of credentials.
type Client struct {
	api    *ec2.Client
	creds  aws.CredentialsProvider
	region string
	poll   Poll
	// noIMDS and roleARN shape the message when no credentials are found.
	noIMDS  bool
	roleARN string
}

// New builds a client. It makes no call: a missing credential source shows at the first
// call, or at Credentials, as an *Error of KindNoCredentials.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Region == "" {
		return nil, &Error{Kind: KindNoRegion, Op: OpConfigure,
			Message: "the instance's region is unknown: set AWS_REGION or settings.ec2.region in the policy"}
	}
	timeout := cmp.Or(cfg.Timeout, DefaultTimeout)
	attempts := cmp.Or(cfg.MaxAttempts, DefaultMaxAttempts)
	backoff := cmp.Or(cfg.MaxBackoff, DefaultMaxBackoff)
	awsCfg, err := LoadAWSConfig(ctx, AWSOptions{
		Region:     cfg.Region,
		NoIMDS:     cfg.NoIMDS,
		HTTPClient: awshttp.NewBuildableClient().WithTimeout(timeout),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				o.MaxBackoff = backoff
			})
		},
	})
	if err != nil {
		return nil, &Error{Kind: KindNoCredentials, Op: OpConfigure, Message: "load the AWS configuration: " + err.Error(), Err: err}
	}
	if cfg.RoleARN != "" {
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(awsCfg), cfg.RoleARN,
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "imdsmend" }))
	}
	return NewFromConfig(awsCfg, cfg), nil
}

// NewFromConfig builds a client on a loaded AWS configuration — imdsmend fleet's, one per
// account and region — for cfg.Region (else awsCfg's); of cfg, it also takes Poll, and
// NoIMDS and RoleARN for its messages.
func NewFromConfig(awsCfg aws.Config, cfg Config) *Client {
	region := cmp.Or(cfg.Region, awsCfg.Region)
	return &Client{
		api:     ec2.NewFromConfig(awsCfg, func(o *ec2.Options) { o.Region = region }),
		creds:   awsCfg.Credentials,
		region:  region,
		poll:    cfg.Poll.withDefaults(),
		noIMDS:  cfg.NoIMDS,
		roleARN: cfg.RoleARN,
	}
}

// Region is the region the client calls.
func (c *Client) Region() string { return c.region }

// Credentials finds the credentials the calls will be signed with and names their
// source (e.g. "EnvConfigCredentials", "SharedConfigCredentials: /root/.aws/credentials",
// "WebIdentityCredentials", "AssumeRoleProvider", "EC2RoleProvider"). It never returns
// the secrets.
func (c *Client) Credentials(ctx context.Context) (source string, err error) {
	if c.creds == nil {
		return "", c.noCredentials(errors.New("no credentials provider"))
	}
	cr, err := c.creds.Retrieve(ctx)
	if err != nil {
		return "", c.noCredentials(err)
	}
	return cr.Source, nil
}

// noCredentials says plainly which sources were tried and how to supply one.
func (c *Client) noCredentials(err error) *Error {
	var tried string
	if c.noIMDS {
		tried = "IMDS is not used for credentials while it is broken, and none of the sources that don't need it has any"
	} else {
		tried = "no credential source has any"
	}
	msg := tried + ": set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile in the shared credentials or config file (AWS_PROFILE), or AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, in imdsmend's environment"
	if c.roleARN != "" {
		msg += fmt.Sprintf("; settings.ec2.role_arn (%s) is assumed with those credentials", c.roleARN)
	}
	return &Error{Kind: KindNoCredentials, Op: OpAuthenticate, Message: msg + " (" + short(err.Error()) + ")", Err: err}
}

// short trims an SDK message to its first line for findings.
func short(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
