package ec2

import (
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/imdsmend/imdsmend/tests/simkit"
)

// serve runs s on a loopback port for the test.
func serve(t testing.TB, s *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() { _ = s.Close() })
	return "http://" + l.Addr().String()
}

// client is the real SDK's EC2 client pointed at the simulator, without retries so every
// error reaches the test.
func client(url, region, key string) *awsec2.Client {
	return clientWith(url, region, credentials.NewStaticCredentialsProvider(key, "secret", ""))
}

func clientWith(url, region string, creds aws.CredentialsProvider) *awsec2.Client {
	return awsec2.New(awsec2.Options{
		Region:       region,
		BaseEndpoint: aws.String(url),
		Credentials:  creds,
		Retryer:      aws.NopRetryer{},
		HTTPClient:   BufferingClient{},
	})
}

// apiErr is what the SDK made of an error answer.
type apiErr struct {
	Code      string
	Status    int
	RequestID bool
}

func errOf(t *testing.T, err error) apiErr {
	t.Helper()
	if err == nil {
		return apiErr{}
	}
	var ae smithy.APIError
	var re *awshttp.ResponseError
	if !errors.As(err, &ae) || !errors.As(err, &re) {
		t.Fatalf("%v: not an API error with an HTTP response", err)
	}
	return apiErr{ae.ErrorCode(), re.HTTPStatusCode(), re.ServiceRequestID() != ""}
}

var ctx = context.Background()

func TestDescribeInstancesShape(t *testing.T) {
	s := NewDefault(Config{})
	s.AddInstance(Instance{ID: "i-0aaaaaaaaaaaaaaa1", Tags: []Tag{{"Name", "web-1"}, {"Team", "web"}}, Options: Options{HTTPEndpoint: Disabled, HTTPTokens: Optional, HopLimit: 1, HTTPProtocolIPv6: Enabled, InstanceMetadataTags: Enabled}})
	c := client(serve(t, s), DefaultRegion, "AKIDEXAMPLE")
	out, err := c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{InstanceIds: []string{DefaultInstanceID, "i-0aaaaaaaaaaaaaaa1"}})
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		Reservation, Owner, ID, Image, State string
		Code                                 int32
		Tags                                 map[string]string
		Opts                                 types.InstanceMetadataOptionsResponse
	}
	var gots []got
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			tags := map[string]string{}
			for _, tag := range in.Tags {
				tags[*tag.Key] = *tag.Value
			}
			gots = append(gots, got{*r.ReservationId, *r.OwnerId, *in.InstanceId, *in.ImageId, string(in.State.Name), *in.State.Code, tags, *in.MetadataOptions})
		}
	}
	want := []got{
		{"r-0123456789abcdef0", DefaultAccount, DefaultInstanceID, DefaultImageID, "running", 16, map[string]string{}, types.InstanceMetadataOptionsResponse{
			State: "applied", HttpTokens: "required", HttpPutResponseHopLimit: aws.Int32(2), HttpEndpoint: "enabled", HttpProtocolIpv6: "disabled", InstanceMetadataTags: "disabled"}},
		{"r-0aaaaaaaaaaaaaaa1", DefaultAccount, "i-0aaaaaaaaaaaaaaa1", DefaultImageID, "running", 16, map[string]string{"Name": "web-1", "Team": "web"}, types.InstanceMetadataOptionsResponse{
			State: "applied", HttpTokens: "optional", HttpPutResponseHopLimit: aws.Int32(1), HttpEndpoint: "disabled", HttpProtocolIpv6: "enabled", InstanceMetadataTags: "enabled"}},
	}
	if diff := cmp.Diff(want, gots, cmp.AllowUnexported(types.InstanceMetadataOptionsResponse{})); diff != "" {
		t.Errorf("DescribeInstances (-want +got):\n%s", diff)
	}
}

// TestErrors: every error the simulator gives reaches the SDK with the service's code,
// HTTP status and a request ID.
func TestErrors(t *testing.T) {
	s := NewDefault(Config{})
	c := client(serve(t, s), DefaultRegion, "AKIDEXAMPLE")
	id := aws.String(DefaultInstanceID)
	tests := []struct {
		name string
		call func() error
		want apiErr
	}{
		{"unknown instance", func() error {
			_, err := c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{InstanceIds: []string{"i-0000000000000dead"}})
			return err
		}, apiErr{"InvalidInstanceID.NotFound", 400, true}},
		{"malformed instance id", func() error {
			_, err := c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{InstanceIds: []string{"i-xyz"}})
			return err
		}, apiErr{"InvalidInstanceID.Malformed", 400, true}},
		{"describe dry run", func() error {
			_, err := c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{DryRun: aws.Bool(true)})
			return err
		}, apiErr{"DryRunOperation", 412, true}},
		{"unknown filter", func() error {
			_, err := c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("bogus"), Values: []string{"x"}}}})
			return err
		}, apiErr{"InvalidParameterValue", 400, true}},
		{"page size below 5", func() error {
			_, err := c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{MaxResults: aws.Int32(4)})
			return err
		}, apiErr{"InvalidParameterValue", 400, true}},
		{"page size above 1000", func() error {
			_, err := c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{MaxResults: aws.Int32(1001)})
			return err
		}, apiErr{"InvalidParameterValue", 400, true}},
		{"page size with instance ids", func() error {
			_, err := c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{MaxResults: aws.Int32(5), InstanceIds: []string{DefaultInstanceID}})
			return err
		}, apiErr{"InvalidParameterCombination", 400, true}},
		{"bad page token", func() error {
			_, err := c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{MaxResults: aws.Int32(5), NextToken: aws.String("nope")})
			return err
		}, apiErr{"InvalidPaginationToken", 400, true}},
		{"hop limit 0", func() error {
			_, err := c.ModifyInstanceMetadataOptions(ctx, &awsec2.ModifyInstanceMetadataOptionsInput{InstanceId: id, HttpPutResponseHopLimit: aws.Int32(0)})
			return err
		}, apiErr{"InvalidParameterValue", 400, true}},
		{"hop limit 65", func() error {
			_, err := c.ModifyInstanceMetadataOptions(ctx, &awsec2.ModifyInstanceMetadataOptionsInput{InstanceId: id, HttpPutResponseHopLimit: aws.Int32(65)})
			return err
		}, apiErr{"InvalidParameterValue", 400, true}},
		{"bad tokens value", func() error {
			_, err := c.ModifyInstanceMetadataOptions(ctx, &awsec2.ModifyInstanceMetadataOptionsInput{InstanceId: id, HttpTokens: "sometimes"})
			return err
		}, apiErr{"InvalidParameterValue", 400, true}},
		{"modify unknown instance", func() error {
			_, err := c.ModifyInstanceMetadataOptions(ctx, &awsec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String("i-0000000000000dead"), HttpEndpoint: "enabled"})
			return err
		}, apiErr{"InvalidInstanceID.NotFound", 400, true}},
		{"modify malformed id", func() error {
			_, err := c.ModifyInstanceMetadataOptions(ctx, &awsec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String("web-1"), HttpEndpoint: "enabled"})
			return err
		}, apiErr{"InvalidInstanceID.Malformed", 400, true}},
		{"modify dry run", func() error {
			_, err := c.ModifyInstanceMetadataOptions(ctx, &awsec2.ModifyInstanceMetadataOptionsInput{InstanceId: id, HttpEndpoint: "enabled", DryRun: aws.Bool(true)})
			return err
		}, apiErr{"DryRunOperation", 412, true}},
		{"defaults dry run", func() error {
			_, err := c.GetInstanceMetadataDefaults(ctx, &awsec2.GetInstanceMetadataDefaultsInput{DryRun: aws.Bool(true)})
			return err
		}, apiErr{"DryRunOperation", 412, true}},
		{"unknown image", func() error {
			_, err := c.DescribeImages(ctx, &awsec2.DescribeImagesInput{ImageIds: []string{"ami-00000000000000000"}})
			return err
		}, apiErr{"InvalidAMIID.NotFound", 400, true}},
		{"unknown region in the credential scope", func() error {
			_, err := client(*c.Options().BaseEndpoint, "us-nowhere-1", "AKIDEXAMPLE").DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
			return err
		}, apiErr{"AuthFailure", 401, true}},
		{"the instance asked for in another region", func() error {
			_, err := client(*c.Options().BaseEndpoint, "eu-west-1", "AKIDEXAMPLE").DescribeInstances(ctx, &awsec2.DescribeInstancesInput{InstanceIds: []string{DefaultInstanceID}})
			return err
		}, apiErr{"InvalidInstanceID.NotFound", 400, true}},
		{"an unknown region name", func() error {
			_, err := c.DescribeRegions(ctx, &awsec2.DescribeRegionsInput{AllRegions: aws.Bool(true), Filters: []types.Filter{{Name: aws.String("region-name"), Values: []string{"x"}}}, RegionNames: []string{"nowhere-1"}})
			return err
		}, apiErr{"InvalidParameterValue", 400, true}},
		{"an action the simulator lacks", func() error {
			_, err := c.DescribeVpcs(ctx, &awsec2.DescribeVpcsInput{})
			return err
		}, apiErr{"InvalidAction", 400, true}},
	}
	for _, tt := range tests {
		if got := errOf(t, tt.call()); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
	// None of them changed anything.
	if in, _ := s.Instance(DefaultInstanceID); in.Options != DefaultOptions() {
		t.Errorf("options after errors and dry runs: %+v, want the defaults", in.Options)
	}
}

func TestFaults(t *testing.T) {
	modify := func(c *awsec2.Client, tokens types.HttpTokensState) error {
		_, err := c.ModifyInstanceMetadataOptions(ctx, &awsec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(DefaultInstanceID), HttpTokens: tokens, HttpPutResponseHopLimit: aws.Int32(2)})
		return err
	}
	describe := func(c *awsec2.Client) error {
		_, err := c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{InstanceIds: []string{DefaultInstanceID}})
		return err
	}
	tests := []struct {
		cfg      Config
		describe apiErr
		required apiErr // modify with HttpTokens=required
		optional apiErr // modify with HttpTokens=optional
	}{
		{Config{Fault: FaultUnauthorized}, apiErr{"UnauthorizedOperation", 403, true}, apiErr{"UnauthorizedOperation", 403, true}, apiErr{"UnauthorizedOperation", 403, true}},
		{Config{Fault: FaultUnauthorized, Actions: []string{"ModifyInstanceMetadataOptions"}}, apiErr{}, apiErr{"UnauthorizedOperation", 403, true}, apiErr{"UnauthorizedOperation", 403, true}},
		{Config{Fault: FaultThrottled}, apiErr{"RequestLimitExceeded", 503, true}, apiErr{"RequestLimitExceeded", 503, true}, apiErr{"RequestLimitExceeded", 503, true}},
		{Config{Fault: FaultUnsupported}, apiErr{}, apiErr{}, apiErr{"UnsupportedOperation", 400, true}},
		{Config{Fault: FaultDeclarative}, apiErr{}, apiErr{}, apiErr{"UnsupportedOperation", 400, true}},
		{Config{Fault: FaultSlow, Delay: time.Millisecond}, apiErr{}, apiErr{}, apiErr{}},
		{Config{Fault: FaultNeverApplied}, apiErr{}, apiErr{}, apiErr{}},
	}
	for _, tt := range tests {
		t.Run(string(tt.cfg.Fault), func(t *testing.T) {
			c := client(serve(t, NewDefault(tt.cfg)), DefaultRegion, "AKIDEXAMPLE")
			if got := errOf(t, describe(c)); got != tt.describe {
				t.Errorf("describe: %+v, want %+v", got, tt.describe)
			}
			if got := errOf(t, modify(c, types.HttpTokensStateRequired)); got != tt.required {
				t.Errorf("modify tokens required: %+v, want %+v", got, tt.required)
			}
			if got := errOf(t, modify(c, types.HttpTokensStateOptional)); got != tt.optional {
				t.Errorf("modify tokens optional: %+v, want %+v", got, tt.optional)
			}
		})
	}
}

func TestFaultTimesThenHealthy(t *testing.T) {
	c := client(serve(t, NewDefault(Config{Fault: FaultThrottled, Times: 2})), DefaultRegion, "AKIDEXAMPLE")
	var codes []string
	for range 3 {
		_, err := c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
		codes = append(codes, errOf(t, err).Code)
	}
	if diff := cmp.Diff([]string{"RequestLimitExceeded", "RequestLimitExceeded", ""}, codes); diff != "" {
		t.Errorf("codes (-want +got):\n%s", diff)
	}
}

func TestMalformedXML(t *testing.T) {
	c := client(serve(t, NewDefault(Config{Fault: FaultMalformed})), DefaultRegion, "AKIDEXAMPLE")
	_, err := c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
	var de *smithy.DeserializationError
	if !errors.As(err, &de) {
		t.Fatalf("malformed answer: %v, want a deserialization error", err)
	}
}

func TestUnauthorizedMessage(t *testing.T) {
	c := client(serve(t, NewDefault(Config{Fault: FaultUnauthorized})), DefaultRegion, "AKIDEXAMPLE")
	_, err := c.ModifyInstanceMetadataOptions(ctx, &awsec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(DefaultInstanceID), HttpEndpoint: "enabled"})
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatal(err)
	}
	want := "You are not authorized to perform this operation. User: " + DefaultUserARN + " is not authorized to perform: ec2:ModifyInstanceMetadataOptions on resource: arn:aws:ec2:us-east-1:123456789012:instance/" + DefaultInstanceID +
		" because no identity-based policy allows the ec2:ModifyInstanceMetadataOptions action. Encoded authorization failure message: "
	if msg := ae.ErrorMessage(); len(msg) <= len(want) || msg[:len(want)] != want {
		t.Errorf("message %q, want it to start %q and carry the encoded message", msg, want)
	}
}

// TestModifyPendingThenApplied: the change answers pending, shows pending for ApplyAfter
// Describes, then applied; IMDS (EffectiveOptions) enforces it only once applied.
func TestModifyPendingThenApplied(t *testing.T) {
	s := NewDefault(Config{ApplyAfter: 2})
	c := client(serve(t, s), DefaultRegion, "AKIDEXAMPLE")
	out, err := c.ModifyInstanceMetadataOptions(ctx, &awsec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(DefaultInstanceID), HttpPutResponseHopLimit: aws.Int32(1), HttpEndpoint: types.InstanceMetadataEndpointStateDisabled})
	if err != nil {
		t.Fatal(err)
	}
	o := out.InstanceMetadataOptions
	if *out.InstanceId != DefaultInstanceID || o.State != "pending" || *o.HttpPutResponseHopLimit != 1 || o.HttpEndpoint != "disabled" || o.HttpTokens != "required" {
		t.Errorf("modify answer: %s %+v, want pending with hop limit 1, endpoint disabled, tokens unchanged", *out.InstanceId, *o)
	}
	var states []string
	var effective []int
	for range 4 {
		eff, _ := s.EffectiveOptions(DefaultInstanceID)
		effective = append(effective, eff.HopLimit)
		d, err := c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{InstanceIds: []string{DefaultInstanceID}})
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, string(d.Reservations[0].Instances[0].MetadataOptions.State))
	}
	if diff := cmp.Diff([]string{"pending", "pending", "applied", "applied"}, states); diff != "" {
		t.Errorf("Describe states (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{2, 2, 2, 1}, effective); diff != "" {
		t.Errorf("enforced hop limits (-want +got):\n%s", diff)
	}
}

func TestApplyDelayOnTheClock(t *testing.T) {
	s := NewDefault(Config{ApplyDelay: 5 * time.Second})
	clock := simkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s.SetClock(clock.Now)
	c := client(serve(t, s), DefaultRegion, "AKIDEXAMPLE")
	if _, err := c.ModifyInstanceMetadataOptions(ctx, &awsec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(DefaultInstanceID), HttpTokens: "optional"}); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		d, err := c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
		if err != nil {
			t.Fatal(err)
		}
		return string(d.Reservations[0].Instances[0].MetadataOptions.State)
	}
	var got []string
	got = append(got, state(), state())
	clock.Advance(4999 * time.Millisecond)
	got = append(got, state())
	clock.Advance(time.Millisecond)
	got = append(got, state())
	if diff := cmp.Diff([]string{"pending", "pending", "pending", "applied"}, got); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
}

func TestNeverApplied(t *testing.T) {
	s := NewDefault(Config{Fault: FaultNeverApplied, ApplyAfter: 0})
	c := client(serve(t, s), DefaultRegion, "AKIDEXAMPLE")
	if _, err := c.ModifyInstanceMetadataOptions(ctx, &awsec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(DefaultInstanceID), HttpPutResponseHopLimit: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		d, err := c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
		if err != nil {
			t.Fatal(err)
		}
		if st := d.Reservations[0].Instances[0].MetadataOptions.State; st != "pending" {
			t.Fatalf("state %s, want pending for ever", st)
		}
	}
	if eff, _ := s.EffectiveOptions(DefaultInstanceID); eff.HopLimit != 2 {
		t.Errorf("enforced hop limit %d, want the old 2", eff.HopLimit)
	}
}

func TestInstanceMetadataDefaults(t *testing.T) {
	tests := []struct {
		cfg  Config
		set  *AccountDefaults
		want types.InstanceMetadataDefaultsResponse
	}{
		{Config{}, nil, types.InstanceMetadataDefaultsResponse{ManagedBy: "account"}},
		{Config{}, &AccountDefaults{HTTPTokens: Required, HopLimit: 2}, types.InstanceMetadataDefaultsResponse{HttpTokens: "required", HttpPutResponseHopLimit: aws.Int32(2), ManagedBy: "account"}},
		{Config{Fault: FaultUnsupported}, nil, types.InstanceMetadataDefaultsResponse{ManagedBy: "account", HttpTokensEnforced: "enabled"}},
		{Config{Fault: FaultDeclarative}, nil, types.InstanceMetadataDefaultsResponse{HttpTokens: "required", ManagedBy: "declarative-policy", ManagedExceptionMessage: aws.String(DeclarativeMessage), HttpTokensEnforced: "enabled"}},
	}
	for _, tt := range tests {
		s := NewDefault(tt.cfg)
		if tt.set != nil {
			s.SetDefaults(DefaultAccount, DefaultRegion, *tt.set)
		}
		out, err := client(serve(t, s), DefaultRegion, "AKIDEXAMPLE").GetInstanceMetadataDefaults(ctx, &awsec2.GetInstanceMetadataDefaultsInput{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, *out.AccountLevel, cmp.AllowUnexported(types.InstanceMetadataDefaultsResponse{})); diff != "" {
			t.Errorf("%s: account level (-want +got):\n%s", tt.cfg.Fault, diff)
		}
	}
}

func TestRegionsAndImages(t *testing.T) {
	s := New(Config{})
	if err := s.Generate(FleetSpec{Instances: 40, Regions: 4, Accounts: 1, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	c := client(serve(t, s), "eu-central-1", "AKIDEXAMPLE")
	regs, err := c.DescribeRegions(ctx, &awsec2.DescribeRegionsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range regs.Regions {
		names = append(names, *r.RegionName)
	}
	if diff := cmp.Diff([]string{"eu-central-1", "eu-west-1", "us-east-1", "us-west-2"}, names); diff != "" {
		t.Errorf("regions (-want +got):\n%s", diff)
	}
	imgs, err := c.DescribeImages(ctx, &awsec2.DescribeImagesInput{})
	if err != nil {
		t.Fatal(err)
	}
	v2 := 0
	for _, img := range imgs.Images {
		if img.ImdsSupport == types.ImdsSupportValuesV20 {
			v2++
		}
	}
	if len(imgs.Images) != 3 || v2 != 1 {
		t.Errorf("%d images, %d with ImdsSupport v2.0; want 3 and 1", len(imgs.Images), v2)
	}
}

// TestFleetPaginationFiltersAndRegions: the region comes from the credential scope, pages
// hold at most MaxResults and cover the region once, and filters select server-side.
func TestFleetPaginationFiltersAndRegions(t *testing.T) {
	s := New(Config{})
	if err := s.Generate(FleetSpec{Instances: 10000, Regions: 4, Accounts: 1, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	url := serve(t, s)
	want := map[string]int{}
	hop1Hosts := 0
	for _, in := range s.Instances() {
		want[in.Region]++
		if in.Region == "us-west-2" && in.Options.HopLimit == 1 {
			hop1Hosts++
		}
	}
	for _, region := range s.Regions() {
		c := client(url, region, "AKIDEXAMPLE")
		p := awsec2.NewDescribeInstancesPaginator(c, &awsec2.DescribeInstancesInput{MaxResults: aws.Int32(1000)})
		seen, pages := map[string]bool{}, 0
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			n := 0
			for _, r := range page.Reservations {
				for _, in := range r.Instances {
					n++
					if *in.Placement.AvailabilityZone != region+"a" || seen[*in.InstanceId] {
						t.Fatalf("%s: instance %s from %s, or seen twice", region, *in.InstanceId, *in.Placement.AvailabilityZone)
					}
					seen[*in.InstanceId] = true
				}
			}
			if n > 1000 {
				t.Fatalf("page of %d instances", n)
			}
		}
		if len(seen) != want[region] || pages != (want[region]+999)/1000 {
			t.Errorf("%s: %d instances in %d pages, want %d in %d", region, len(seen), pages, want[region], (want[region]+999)/1000)
		}
	}
	c := client(url, "us-west-2", "AKIDEXAMPLE")
	out, err := c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("metadata-options.http-put-response-hop-limit"), Values: []string{"1"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			n++
			container := false
			for _, tag := range in.Tags {
				container = container || *tag.Key == "eks:cluster-name" || *tag.Key == "AmazonECSManaged"
			}
			if !container || *in.MetadataOptions.HttpPutResponseHopLimit != 1 {
				t.Fatalf("%s: hop limit %d, container host %v", *in.InstanceId, *in.MetadataOptions.HttpPutResponseHopLimit, container)
			}
		}
	}
	if n != hop1Hosts || n == 0 {
		t.Errorf("hop-limit-1 filter: %d instances, want %d (and some)", n, hop1Hosts)
	}
	out, err = c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:Team"), Values: []string{"we*"}},
		{Name: aws.String("instance-state-name"), Values: []string{"running"}},
		{Name: aws.String("tag-key"), Values: []string{"eks:cluster-name"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if in.State.Name != "running" {
				t.Fatalf("%s is %s", *in.InstanceId, in.State.Name)
			}
		}
	}
	if len(out.Reservations) == 0 {
		t.Error("no running EKS web instance in us-west-2")
	}
}

func TestGenerateIsSeededAndFast(t *testing.T) {
	spec := FleetSpec{Instances: 10000, Regions: 4, Accounts: 3, Seed: 42}
	a, b := New(Config{}), New(Config{})
	start := time.Now()
	if err := a.Generate(spec); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	_ = b.Generate(spec)
	if diff := cmp.Diff(a.Instances(), b.Instances()); diff != "" {
		t.Errorf("same seed, different fleets (-a +b):\n%s", diff)
	}
	counts := map[string]int{}
	for _, in := range a.Instances() {
		o := in.Options
		counts["account "+in.Account]++
		if o.HTTPEndpoint == Disabled {
			counts["disabled"]++
		}
		if o.HopLimit == 1 {
			counts["hop1"]++
		}
		if o.HTTPTokens == Optional {
			counts["optional"]++
		}
		if o.State == StatePend {
			counts["pending"]++
		}
	}
	for _, k := range []string{"disabled", "hop1", "optional", "pending", "account 123456789012", "account 200000000001", "account 200000000002"} {
		if counts[k] == 0 {
			t.Errorf("no %s instance in the mix: %v", k, counts)
		}
	}
	t.Logf("10,000 instances generated in %v: %v", took, counts)
}

// TestAssumeRoleAccounts: AssumeRole hands out credentials of the role's account, and the
// EC2 API then shows that account's instances; an unknown role is AccessDenied.
func TestAssumeRoleAccounts(t *testing.T) {
	s := New(Config{})
	if err := s.Generate(FleetSpec{Instances: 60, Regions: 2, Accounts: 3, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	url := serve(t, s)
	stsc := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""), Retryer: aws.NopRetryer{}, HTTPClient: BufferingClient{}})
	out, err := stsc.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(RoleARN(FleetAccount(2))), RoleSessionName: aws.String("imdsmend")})
	if err != nil {
		t.Fatal(err)
	}
	cr := out.Credentials
	if *out.AssumedRoleUser.Arn != "arn:aws:sts::200000000002:assumed-role/imdsmend-fleet/imdsmend" || cr.Expiration == nil || *cr.SessionToken == "" {
		t.Errorf("assumed role %s, expiration %v", *out.AssumedRoleUser.Arn, cr.Expiration)
	}
	c := clientWith(url, "us-east-1", credentials.NewStaticCredentialsProvider(*cr.AccessKeyId, *cr.SecretAccessKey, *cr.SessionToken))
	d, err := c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, in := range s.Instances() {
		if in.Account == "200000000002" && in.Region == "us-east-1" {
			want++
		}
	}
	if len(d.Reservations) != want || want == 0 || *d.Reservations[0].OwnerId != "200000000002" {
		t.Errorf("%d reservations, want %d of account 200000000002", len(d.Reservations), want)
	}
	id, err := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Retryer: aws.NopRetryer{}, HTTPClient: BufferingClient{},
		Credentials: credentials.NewStaticCredentialsProvider(*cr.AccessKeyId, *cr.SecretAccessKey, *cr.SessionToken)}).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || *id.Account != "200000000002" {
		t.Errorf("caller identity %v, %v", id, err)
	}
	_, err = stsc.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::999999999999:role/nope"), RoleSessionName: aws.String("imdsmend")})
	if got := errOf(t, err); got != (apiErr{"AccessDenied", 403, true}) {
		t.Errorf("unknown role: %+v, want AccessDenied 403", got)
	}
}

// TestThrottleBuckets: each action has its own bucket per account and region, sized by
// kind (mutating, non-mutating, unfiltered and unpaginated); an empty one answers
// RequestLimitExceeded until it refills.
func TestThrottleBuckets(t *testing.T) {
	s := NewDefault(Config{Throttle: Rates{Mutating: Bucket{2, 1}, NonMutating: Bucket{3, 1}, Unpaginated: Bucket{1, 1}}})
	clock := simkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s.SetClock(clock.Now)
	url := serve(t, s)
	c := client(url, DefaultRegion, "AKIDEXAMPLE")
	other := client(url, "eu-west-1", "AKIDEXAMPLE")
	code := func(err error) string { return errOf(t, err).Code }
	unpaginated := func(c *awsec2.Client) string {
		_, err := c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
		return code(err)
	}
	paged := func() string {
		_, err := c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{MaxResults: aws.Int32(5)})
		return code(err)
	}
	modify := func() string {
		_, err := c.ModifyInstanceMetadataOptions(ctx, &awsec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(DefaultInstanceID), HttpEndpoint: "enabled"})
		return code(err)
	}
	regions := func() string {
		_, err := c.DescribeRegions(ctx, &awsec2.DescribeRegionsInput{RegionNames: []string{"us-east-1"}})
		return code(err)
	}
	got := []string{unpaginated(c), unpaginated(c), paged(), paged(), paged(), paged(), regions(), modify(), modify(), modify(), unpaginated(other)}
	clock.Advance(time.Second)
	got = append(got, unpaginated(c), unpaginated(c), paged(), modify(), modify())
	const rle = "RequestLimitExceeded"
	want := []string{"", rle, "", "", "", rle, "", "", "", rle, "", "", rle, "", "", rle}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("codes (-want +got):\n%s", diff)
	}
	st := s.Stats()
	if st.Throttled != 5 || st.ByAction["DescribeInstances"] != 10 || st.ByAction["ModifyInstanceMetadataOptions"] != 5 || st.Modified != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestAdmin(t *testing.T) {
	s := NewDefault(Config{})
	url := serve(t, s)
	l, err := simkit.Listen("unix:" + t.TempDir() + "/admin.sock")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s.AdminHandler()}
	go func() { _ = hs.Serve(l) }()
	t.Cleanup(func() { _ = hs.Close() })
	admin := NewAdminClient("unix:" + l.Addr().String())
	if err := admin.SetOptions(ctx, DefaultInstanceID, Options{HTTPEndpoint: Disabled, HopLimit: 1}); err != nil {
		t.Fatal(err)
	}
	in, err := admin.Instance(ctx, DefaultInstanceID)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultOptions()
	want.HTTPEndpoint, want.HopLimit = Disabled, 1
	if in.Options != want {
		t.Errorf("options %+v, want %+v", in.Options, want)
	}
	if eff, _ := s.EffectiveOptions(DefaultInstanceID); eff != want {
		t.Errorf("enforced %+v, want %+v", eff, want)
	}
	if err := admin.SetConfig(ctx, Config{Fault: FaultUnauthorized, Actions: []string{"ModifyInstanceMetadataOptions"}, ApplyAfter: 3}); err != nil {
		t.Fatal(err)
	}
	if cfg := s.Config(); cfg.Fault != FaultUnauthorized || cfg.ApplyAfter != 3 || len(cfg.Actions) != 1 {
		t.Errorf("config %+v", cfg)
	}
	c := client(url, DefaultRegion, "AKIDEXAMPLE")
	_, _ = c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
	_, _ = c.ModifyInstanceMetadataOptions(ctx, &awsec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(DefaultInstanceID)})
	st, err := admin.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Requests != 2 || st.Errors["UnauthorizedOperation"] != 1 {
		t.Errorf("stats %+v", st)
	}
	if err := admin.RemoveInstance(ctx, DefaultInstanceID); err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{InstanceIds: []string{DefaultInstanceID}})
	if got := errOf(t, err); got.Code != "InvalidInstanceID.NotFound" {
		t.Errorf("describe a removed instance: %+v", got)
	}
	if err := admin.SetConfig(ctx, Config{Fault: "bogus"}); err == nil {
		t.Error("a bogus fault was accepted")
	}
	if err := admin.SetOptions(ctx, DefaultInstanceID, Options{HopLimit: 65}); err == nil {
		t.Error("hop limit 65 was accepted")
	}
}

// TestFlags: the standalone flags build the fleet, the fault and the access keys.
func TestFlags(t *testing.T) {
	fs := flag.NewFlagSet("ec2sim", flag.ContinueOnError)
	c := RegisterConfigFlags(fs, "")
	err := fs.Parse([]string{"--instances", "100", "--regions", "2", "--accounts", "2", "--seed", "9", "--fault", "unauthorized", "--fault-actions", "ModifyInstanceMetadataOptions", "--fault-regions", "us-east-1",
		"--apply-after", "3", "--throttle", "default", "--access-key", "AKIDSECOND=" + FleetAccount(1), "--role", "arn:aws:iam::111122223333:role/ops"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Server()
	if err != nil {
		t.Fatal(err)
	}
	if cfg := s.Config(); cfg.Fault != FaultUnauthorized || cfg.ApplyAfter != 3 || cfg.Throttle != DefaultRates || len(cfg.Actions) != 1 || len(cfg.Regions) != 1 {
		t.Errorf("config %+v", cfg)
	}
	c2 := client(serve(t, s), "eu-central-1", "AKIDSECOND")
	out, err := c2.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Reservations) != 25 || *out.Reservations[0].OwnerId != FleetAccount(1) {
		t.Errorf("%d reservations for the second account in eu-central-1, want 25", len(out.Reservations))
	}
	if !s.roles["arn:aws:iam::111122223333:role/ops"] {
		t.Error("--role not registered")
	}
	for _, bad := range [][]string{{"--access-key", "AKID=1"}, {"--fault", "nope"}, {"--throttle", "lots"}, {"--role", "ops"}} {
		fs := flag.NewFlagSet("ec2sim", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c := RegisterConfigFlags(fs, "")
		if err := fs.Parse(bad); err == nil {
			_, err = c.Server()
			if err == nil {
				t.Errorf("%v accepted", bad)
			}
		}
	}
}

func TestParseRates(t *testing.T) {
	tests := []struct {
		in   string
		want Rates
		ok   bool
	}{
		{"", Rates{}, true},
		{"off", Rates{}, true},
		{"default", DefaultRates, true},
		{"200/5,100/20,50/10", DefaultRates, true},
		{"10/1,20/2", Rates{Bucket{10, 1}, Bucket{20, 2}, Bucket{20, 2}}, true},
		{"10/1", Rates{}, false},
		{"10/1,x/2", Rates{}, false},
		{"10/1,20/-2", Rates{}, false},
		{"1/1,2/2,3/3,4/4", Rates{}, false},
	}
	for _, tt := range tests {
		got, err := ParseRates(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseRates(%q) = %+v, %v; want %+v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok {
			if back, _ := ParseRates(got.String()); back != got {
				t.Errorf("%q: String %q reads back as %+v", tt.in, got.String(), back)
			}
		}
	}
}

// TestFaultScope: a fault limited to a region and an action spoils only those answers; the
// reset fault closes the connection without an answer.
func TestFaultScope(t *testing.T) {
	s := NewDefault(Config{Fault: FaultReset, Regions: []string{"eu-west-1"}, Actions: []string{"DescribeInstances"}})
	url := serve(t, s)
	eu, us := client(url, "eu-west-1", "AKIDEXAMPLE"), client(url, DefaultRegion, "AKIDEXAMPLE")
	if _, err := us.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{}); err != nil {
		t.Errorf("us-east-1: %v", err)
	}
	if _, err := eu.DescribeRegions(ctx, &awsec2.DescribeRegionsInput{}); err != nil {
		t.Errorf("eu-west-1 DescribeRegions: %v", err)
	}
	_, err := eu.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
	var ae smithy.APIError
	if err == nil || errors.As(err, &ae) {
		t.Errorf("eu-west-1 DescribeInstances: %v, want a transport error", err)
	}
}

// TestUnknownParameter: a parameter the action does not take is refused, as the service
// does (the SDK never sends one, so this goes by hand).
func TestUnknownParameter(t *testing.T) {
	url := serve(t, NewDefault(Config{}))
	resp, err := http.PostForm(url, map[string][]string{"Action": {"DescribeInstances"}, "Version": {APIVersion}, "InstanceIds.1": {DefaultInstanceID}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "<Code>UnknownParameter</Code>") {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
}

// TestAssumeRoleWithWebIdentity: the SDK's web identity exchange (unsigned) gets credentials
// of the role's account; a token that is not a JWT and an unknown role are refused.
func TestAssumeRoleWithWebIdentity(t *testing.T) {
	s := NewDefault(Config{})
	role := RoleARN("210987654321")
	s.AddRole(role)
	url := serve(t, s)
	stsc := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Retryer: aws.NopRetryer{}, HTTPClient: BufferingClient{}})
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJpbWRzbWVuZCJ9.c2ln"
	out, err := stsc.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(role), RoleSessionName: aws.String("pod"), WebIdentityToken: aws.String(jwt)})
	if err != nil {
		t.Fatal(err)
	}
	if *out.AssumedRoleUser.Arn != "arn:aws:sts::210987654321:assumed-role/imdsmend-fleet/pod" || *out.Credentials.AccessKeyId == "" || *out.Provider == "" {
		t.Errorf("assumed %s with key %q, provider %v", *out.AssumedRoleUser.Arn, *out.Credentials.AccessKeyId, out.Provider)
	}
	cr := out.Credentials
	id, err := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Retryer: aws.NopRetryer{}, HTTPClient: BufferingClient{},
		Credentials: credentials.NewStaticCredentialsProvider(*cr.AccessKeyId, *cr.SecretAccessKey, *cr.SessionToken)}).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || *id.Account != "210987654321" {
		t.Errorf("caller identity %v, %v", id, err)
	}
	for _, tt := range []struct {
		role, token string
		want        apiErr
	}{
		{role, "not-a-jwt", apiErr{"InvalidIdentityToken", 400, true}},
		{RoleARN("999999999999"), jwt, apiErr{"AccessDenied", 403, true}},
	} {
		_, err := stsc.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(tt.role), RoleSessionName: aws.String("pod"), WebIdentityToken: aws.String(tt.token)})
		if got := errOf(t, err); got != tt.want {
			t.Errorf("%s, %q: %+v, want %+v", tt.role, tt.token, got, tt.want)
		}
	}
}
