package fleet

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/imdsmend/imdsmend/internal/ec2api"
)

// AWS is the real Cloud: credentials from ec2api.LoadAWSConfig's chain (environment, web
// identity, shared config and credentials files with their profiles, the instance role;
// not SSO), endpoints from
// AWS_ENDPOINT_URL_EC2 and AWS_ENDPOINT_URL_STS when set, and the SDK's adaptive retry,
// which backs off on RequestLimitExceeded. The configuration is loaded once and each
// role assumed once; internal/ec2api's client is built on it per region.
type AWS struct {
	cfg aws.Config
}

// roleSessionName names imdsmend's sessions in the accounts' CloudTrail.
const roleSessionName = "imdsmend-fleet"

// NewAWS loads the SDK's configuration; homeRegion, when set, replaces the configured
// region for STS and DescribeRegions.
func NewAWS(ctx context.Context, homeRegion string) (*AWS, error) {
	// The instance role stays in the chain, as with the SDK's: fleet may run on an
	// administration instance.
	cfg, err := ec2api.LoadAWSConfig(ctx, ec2api.AWSOptions{
		Region:  homeRegion,
		Retryer: func() aws.Retryer { return retry.NewAdaptiveMode() },
	})
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return &AWS{cfg: cfg}, nil
}

// Region is the configured region (AWS_REGION, the profile's region), or "".
func (a *AWS) Region() string { return a.cfg.Region }

// Account reaches the account: the caller's own, or roleARN's through sts:AssumeRole,
// assumed at once so that a role that cannot be assumed fails here, for its account only.
func (a *AWS) Account(ctx context.Context, roleARN string) (Conn, error) {
	if a.cfg.Region == "" {
		return nil, ErrNoRegion
	}
	cfg := a.cfg.Copy()
	id := accountOfRole(roleARN)
	if roleARN != "" {
		provider := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(a.cfg), roleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = roleSessionName
		})
		cfg.Credentials = aws.NewCredentialsCache(provider)
		if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
			return nil, fmt.Errorf("assume role %s: %w", roleARN, apiError(err))
		}
	}
	if id == "" {
		out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return nil, fmt.Errorf("who am I (sts:GetCallerIdentity): %w", apiError(err))
		}
		id = aws.ToString(out.Account)
	}
	return &awsConn{cfg: cfg, id: id, roleARN: roleARN}, nil
}

type awsConn struct {
	cfg     aws.Config
	id      string
	roleARN string
}

func (c *awsConn) ID() string { return c.id }

func (c *awsConn) Regions(ctx context.Context) ([]string, error) {
	out, err := ec2.NewFromConfig(c.cfg).DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
	if err != nil {
		return nil, apiError(err)
	}
	var regions []string
	for _, r := range out.Regions {
		regions = append(regions, aws.ToString(r.RegionName))
	}
	return regions, nil
}

// Region calls region with the account's credentials: the metadata options' own calls
// (GetInstanceMetadataDefaults, ModifyInstanceMetadataOptions with its dry run and polling)
// through internal/ec2api, the fleet's listing calls directly.
func (c *awsConn) Region(region string) RegionAPI {
	return &awsRegion{
		c:   ec2.NewFromConfig(c.cfg, func(o *ec2.Options) { o.Region = region }),
		api: ec2api.NewFromConfig(c.cfg, ec2api.Config{Region: region, RoleARN: c.roleARN}),
	}
}

type awsRegion struct {
	c   *ec2.Client
	api *ec2api.Client
}

func (r *awsRegion) DescribeInstances(ctx context.Context, in DescribeInput) (DescribePage, error) {
	req := &ec2.DescribeInstancesInput{}
	if len(in.IDs) > 0 {
		req.InstanceIds = in.IDs
	} else {
		for _, f := range in.Filters {
			req.Filters = append(req.Filters, ec2types.Filter{Name: aws.String(f.Name), Values: f.Values})
		}
		if in.MaxResults > 0 {
			req.MaxResults = aws.Int32(int32(in.MaxResults))
		}
		if in.NextToken != "" {
			req.NextToken = aws.String(in.NextToken)
		}
	}
	out, err := r.c.DescribeInstances(ctx, req)
	if err != nil {
		return DescribePage{}, apiError(err)
	}
	var page DescribePage
	page.NextToken = aws.ToString(out.NextToken)
	for _, res := range out.Reservations {
		if page.OwnerID == "" {
			page.OwnerID = aws.ToString(res.OwnerId)
		}
		for _, i := range res.Instances {
			page.Instances = append(page.Instances, instanceOf(i))
		}
	}
	return page, nil
}

func instanceOf(i ec2types.Instance) Instance {
	inst := Instance{ID: aws.ToString(i.InstanceId), ImageID: aws.ToString(i.ImageId), Tags: map[string]string{}}
	if i.State != nil {
		inst.State = string(i.State.Name)
	}
	for _, t := range i.Tags {
		inst.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	inst.Name = inst.Tags["Name"]
	inst.IPv6 = aws.ToString(i.Ipv6Address) != ""
	for _, ni := range i.NetworkInterfaces {
		inst.IPv6 = inst.IPv6 || len(ni.Ipv6Addresses) > 0
	}
	if o := i.MetadataOptions; o != nil {
		inst.Options = Options{HTTPEndpoint: string(o.HttpEndpoint), HTTPTokens: string(o.HttpTokens), HopLimit: int(aws.ToInt32(o.HttpPutResponseHopLimit)),
			HTTPIPv6: string(o.HttpProtocolIpv6), MetadataTags: string(o.InstanceMetadataTags), State: string(o.State)}
	}
	return inst
}

func (r *awsRegion) MetadataDefaults(ctx context.Context) (Defaults, error) {
	d, err := r.api.Defaults(ctx)
	if err != nil {
		return Defaults{}, err
	}
	// -1 is the API's "no preference".
	return Defaults{HTTPEndpoint: d.HTTPEndpoint, HTTPTokens: d.HTTPTokens, HopLimit: max(d.HopLimit, 0),
		MetadataTags: d.InstanceMetadataTags, ManagedBy: d.ManagedBy}, nil
}

func (r *awsRegion) ImageIMDSSupport(ctx context.Context, ids []string) (map[string]string, error) {
	// A filter, not ImageIds: one AMI deregistered since would fail the whole request.
	out, err := r.c.DescribeImages(ctx, &ec2.DescribeImagesInput{Filters: []ec2types.Filter{{Name: aws.String("image-id"), Values: ids}}})
	if err != nil {
		return nil, apiError(err)
	}
	support := map[string]string{}
	for _, img := range out.Images {
		support[aws.ToString(img.ImageId)] = string(img.ImdsSupport)
	}
	return support, nil
}

func (r *awsRegion) Modify(ctx context.Context, id string, set Set) (*Options, error) {
	inst, err := r.api.Modify(ctx, id, ec2api.Change{HTTPEndpoint: set.HTTPEndpoint, HTTPTokens: set.HTTPTokens, HopLimit: set.HopLimit,
		HTTPProtocolIPv6: set.HTTPIPv6, InstanceMetadataTags: set.MetadataTags})
	if inst == nil {
		return nil, err
	}
	o := inst.MetadataOptions
	return &Options{HTTPEndpoint: o.HTTPEndpoint, HTTPTokens: o.HTTPTokens, HopLimit: o.HopLimit, HTTPIPv6: o.HTTPProtocolIPv6,
		MetadataTags: o.InstanceMetadataTags, State: o.State}, err
}

// apiError turns the SDK's error into an APIError with the service's code, message and
// request ID, dropping the SDK's wrapping; other errors (no connection) stay as they are.
func apiError(err error) error {
	var ae smithy.APIError
	if err == nil || !errors.As(err, &ae) {
		return err
	}
	msg := ae.ErrorMessage()
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.ServiceRequestID() != "" {
		msg += " (request ID " + re.ServiceRequestID() + ")"
	}
	return &APIError{Code: ae.ErrorCode(), Message: msg}
}
