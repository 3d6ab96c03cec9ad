package ec2api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// AWSOptions shape the configuration LoadAWSConfig builds.
type AWSOptions struct {
	// Region, when set, replaces the environment's (AWS_REGION) and the profile's.
	Region string
	// NoIMDS leaves the instance role out of the credential chain.
	NoIMDS bool
	// HTTPClient sends the requests; nil means the SDK's default.
	HTTPClient aws.HTTPClient
	// Retryer makes each call's retryer; nil means the SDK's standard one.
	Retryer func() aws.Retryer
}

// LoadAWSConfig builds the SDK configuration imdsmend and imdsmend fleet call AWS with.
// It replaces config.LoadDefaultConfig, whose chain links SSO, SSO-OIDC and "aws login"
// (about 1.3 MB of the binary, issue 10): credentials come, in order, from the environment
// (AWS_ACCESS_KEY_ID…), web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN), the
// shared files' profile (AWS_PROFILE, else default: static keys, role_arn with
// source_profile or credential_source, web_identity_token_file, credential_process), the
// container credentials endpoint (ECS, EKS Pod Identity, CodeBuild), and last the instance
// role unless NoIMDS. Endpoints (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_EC2,
// AWS_ENDPOINT_URL_STS, the profile's services section) and the IMDS client's settings
// still come from the environment and the profile, through ConfigSources.
func LoadAWSConfig(ctx context.Context, o AWSOptions) (aws.Config, error) {
	env, err := config.NewEnvConfig()
	if err != nil {
		return aws.Config{}, fmt.Errorf("read the AWS environment: %w", err)
	}
	name := cmp.Or(env.SharedConfigProfile, "default")
	profile, err := config.LoadSharedConfigProfile(ctx, name, func(lo *config.LoadSharedConfigOptions) {
		if env.SharedConfigFile != "" {
			lo.ConfigFiles = []string{env.SharedConfigFile}
		}
		if env.SharedCredentialsFile != "" {
			lo.CredentialsFiles = []string{env.SharedCredentialsFile}
		}
	})
	var missing config.SharedConfigProfileNotExistError
	if errors.As(err, &missing) && env.SharedConfigProfile == "" {
		// No default profile is no error: the other sources remain.
		profile, err = config.SharedConfig{}, nil
	}
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS profile %s: %w", name, err)
	}
	cfg := aws.Config{
		Region:        cmp.Or(o.Region, env.Region, profile.Region),
		HTTPClient:    o.HTTPClient,
		Retryer:       o.Retryer,
		ConfigSources: []any{env, profile},
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = awshttp.NewBuildableClient()
	}
	if ignore, _, _ := config.GetIgnoreConfiguredEndpoints(ctx, cfg.ConfigSources); !ignore {
		if base := cmp.Or(env.BaseEndpoint, profile.BaseEndpoint); base != "" {
			cfg.BaseEndpoint = aws.String(base)
		}
	}
	var creds aws.CredentialsProvider
	switch {
	case env.Credentials.HasKeys():
		creds = credentials.StaticCredentialsProvider{Value: env.Credentials}
	case env.WebIdentityTokenFilePath != "":
		creds, err = webIdentity(cfg, env.WebIdentityTokenFilePath, env.RoleARN, env.RoleSessionName)
	default:
		creds, err = profileCredentials(cfg, env, &profile, o.NoIMDS)
	}
	if err != nil {
		return aws.Config{}, err
	}
	cfg.Credentials = aws.NewCredentialsCache(creds)
	return cfg, nil
}

// errNoSource is the chain's end when no source has credentials; Client.Credentials turns
// it into a no_credentials error that says where to put some.
var errNoSource = errors.New("no credential source is configured")

// profileCredentials follows the profile p, as the SDK does, less what imdsmend does not
// link (SSO, "aws login").
func profileCredentials(cfg aws.Config, env config.EnvConfig, p *config.SharedConfig, noIMDS bool) (aws.CredentialsProvider, error) {
	var creds aws.CredentialsProvider
	var err error
	switch {
	case p.Source != nil:
		creds, err = profileCredentials(cfg, env, p.Source, noIMDS)
	case p.Credentials.HasKeys():
		creds = credentials.StaticCredentialsProvider{Value: p.Credentials}
	case p.CredentialSource == "Environment" && env.Credentials.HasKeys():
		creds = credentials.StaticCredentialsProvider{Value: env.Credentials}
	case p.CredentialSource == "Ec2InstanceMetadata":
		creds, err = instanceRole(cfg, noIMDS)
	case p.CredentialSource == "EcsContainer":
		creds, err = containerCredentials(env)
	case p.CredentialSource != "":
		err = fmt.Errorf("AWS profile %s: credential_source %s is not supported (Environment, EcsContainer and Ec2InstanceMetadata are)", p.Profile, p.CredentialSource)
	case p.WebIdentityTokenFile != "":
		// The web identity assumes the profile's role itself.
		return webIdentity(cfg, p.WebIdentityTokenFile, p.RoleARN, p.RoleSessionName)
	case p.SSOSessionName != "" || p.SSOStartURL != "" || p.SSOAccountID != "" || p.SSORoleName != "" || p.LoginSession != "":
		return nil, fmt.Errorf("AWS profile %s uses IAM Identity Center (sso_*) or aws login, which imdsmend does not support: "+
			"export its credentials with `eval \"$(aws configure export-credentials --profile %s --format env)\"`", p.Profile, p.Profile)
	case p.CredentialProcess != "":
		creds = processcreds.NewProvider(p.CredentialProcess)
	case env.ContainerCredentialsEndpoint != "" || env.ContainerCredentialsRelativePath != "":
		creds, err = containerCredentials(env)
	default:
		creds, err = instanceRole(cfg, noIMDS)
	}
	if err != nil || p.RoleARN == "" {
		return creds, err
	}
	if p.MFASerial != "" {
		return nil, fmt.Errorf("AWS profile %s: mfa_serial needs a code imdsmend cannot ask for", p.Profile)
	}
	cfg.Credentials = aws.NewCredentialsCache(creds)
	return stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), p.RoleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = p.RoleSessionName
		if p.ExternalID != "" {
			o.ExternalID = aws.String(p.ExternalID)
		}
		if p.RoleDurationSeconds != nil {
			o.Duration = *p.RoleDurationSeconds
		}
	}), nil
}

// The container credentials endpoints ECS and EKS Pod Identity serve (and CodeBuild, where
// a fleet audit may run in CI): a relative path is ECS's own address; a full URI over plain
// HTTP must be one of those hosts or loopback, as the SDK requires, since the answer is a
// set of credentials.
var containerHosts = []netip.Addr{
	netip.MustParseAddr("169.254.170.2"), netip.MustParseAddr("169.254.170.23"), netip.MustParseAddr("fd00:ec2::23"),
}

const ecsCredentialsEndpoint = "http://169.254.170.2"

// containerCredentials reads the credentials a container runtime serves
// (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI, with AWS_CONTAINER_AUTHORIZATION_TOKEN
// or _TOKEN_FILE).
func containerCredentials(env config.EnvConfig) (aws.CredentialsProvider, error) {
	endpoint := env.ContainerCredentialsEndpoint
	if env.ContainerCredentialsRelativePath != "" {
		endpoint = ecsCredentialsEndpoint + env.ContainerCredentialsRelativePath
	} else {
		u, err := url.Parse(endpoint)
		if err != nil || u.Hostname() == "" {
			return nil, fmt.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI %q is not a URL", endpoint)
		}
		addr, err := netip.ParseAddr(u.Hostname())
		if u.Scheme == "http" && (err != nil || !(addr.IsLoopback() || slices.Contains(containerHosts, addr.Unmap()))) {
			return nil, fmt.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI %s: over plain HTTP only loopback and the ECS/EKS addresses may serve credentials", endpoint)
		}
	}
	tokenFile := os.Getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
	return endpointcreds.New(endpoint, func(o *endpointcreds.Options) {
		o.AuthorizationToken = env.ContainerAuthorizationToken
		if tokenFile != "" {
			o.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(func() (string, error) {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return "", fmt.Errorf("read the container authorization token: %w", err)
				}
				return strings.TrimSpace(string(b)), nil
			})
		}
	}), nil
}

// instanceRole is the chain's last source; without IMDS, there is none.
func instanceRole(cfg aws.Config, noIMDS bool) (aws.CredentialsProvider, error) {
	if noIMDS {
		return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, errNoSource
		}), nil
	}
	return ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = imds.NewFromConfig(cfg) }), nil
}

func webIdentity(cfg aws.Config, tokenFile, roleARN, session string) (aws.CredentialsProvider, error) {
	if roleARN == "" {
		return nil, fmt.Errorf("web identity token file %s without a role ARN (AWS_ROLE_ARN, role_arn)", tokenFile)
	}
	return stscreds.NewWebIdentityRoleProvider(sts.NewFromConfig(cfg), roleARN, stscreds.IdentityTokenFile(tokenFile),
		func(o *stscreds.WebIdentityRoleOptions) { o.RoleSessionName = cmp.Or(session, "imdsmend") }), nil
}
