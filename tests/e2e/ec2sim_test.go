package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imdsmend/imdsmend/tests/ec2sim/ec2"
	"github.com/imdsmend/imdsmend/tests/harness"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
)

// imdsCall is what curl saw of one IMDS request: the HTTP status ("000" when no answer
// came) and curl's exit code (28: it timed out).
type imdsCall struct {
	Status string
	Exit   int
}

// curlIMDS sends one IMDS request from ns: the token PUT, or a tokenless GET. A PUT whose
// answer dies on the way can only end by curl's own bound.
func curlIMDS(t *testing.T, ctx context.Context, ns *harness.Namespace, method string) imdsCall {
	t.Helper()
	args := []string{"-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3"}
	target := "http://" + harness.IMDSAddr + "/latest/meta-data/instance-id"
	if method == "PUT" {
		args = append(args, "-X", "PUT", "-H", sim.TTLHeader+": 60")
		target = "http://" + harness.IMDSAddr + sim.TokenPath
	}
	res, err := ns.Exec(ctx, nil, "curl", append(args, target)...)
	if err != nil {
		t.Fatal(err)
	}
	return imdsCall{res.Stdout, res.ExitCode}
}

// ec2Query sends one EC2 Query API call from ns to the simulator at addr with curl, as a
// client that does not sign would, and returns the HTTP status.
func ec2Query(t *testing.T, ctx context.Context, ns *harness.Namespace, addr string, form url.Values) string {
	t.Helper()
	form.Set("Version", ec2.APIVersion)
	res, err := ns.Exec(ctx, nil, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--data", form.Encode(), "http://"+addr+"/")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("EC2 %s: %v exit %d %s", form.Get("Action"), err, res.ExitCode, res.Stderr)
	}
	return res.Stdout
}

// TestEC2SimHopLimit: the EC2 simulator's hop limit is the IP TTL of IMDS's token
// answers, end to end in the kernel. With hop limit 1 a container one forwarded hop
// behind the Host gets no token (the PUT times out) while its tokenless GET is answered
// at once (401), and the Host gets its token; after ModifyInstanceMetadataOptions sets 2
// through the API, both get one. Disabling the endpoint through the API makes IMDS answer
// 403; the admin socket sees that and puts hop limit 1 back.
func TestEC2SimHopLimit(t *testing.T) {
	ctx := testContext(t)
	hop := newHop(t, 1)
	api := net.JoinHostPort(harness.HopIMDSPeer, "8081")
	s, err := harness.StartSim(ctx, hop.IMDS, bins.Imdssim, sim.FaultOK, "--ec2", api, "--hop-limit", "1", "--ec2-apply-after", "0")
	if err != nil {
		t.Fatal(err)
	}
	container := hop.Containers[0]
	type seen struct{ HostPUT, ContainerPUT, ContainerGET imdsCall }
	probe := func() seen {
		return seen{curlIMDS(t, ctx, hop.Host, "PUT"), curlIMDS(t, ctx, container, "PUT"), curlIMDS(t, ctx, container, "GET")}
	}
	var got []seen
	got = append(got, probe())
	modify := url.Values{"Action": {"ModifyInstanceMetadataOptions"}, "InstanceId": {sim.InstanceID}, "HttpPutResponseHopLimit": {"2"}}
	if st := ec2Query(t, ctx, hop.Host, api, modify); st != "200" {
		t.Fatalf("modify hop limit: HTTP %s", st)
	}
	got = append(got, probe())
	disable := url.Values{"Action": {"ModifyInstanceMetadataOptions"}, "InstanceId": {sim.InstanceID}, "HttpEndpoint": {"disabled"}}
	if st := ec2Query(t, ctx, hop.Host, api, disable); st != "200" {
		t.Fatalf("disable endpoint: HTTP %s", st)
	}
	got = append(got, probe())
	// The admin socket sees the state the API left and sets it back.
	admin := ec2.NewIMDSSimAdminClient(s.Socket)
	if in, err := admin.Instance(ctx, sim.InstanceID); err != nil || in.Options.HTTPEndpoint != ec2.Disabled || in.Options.HopLimit != 2 {
		t.Errorf("admin sees %+v, %v; want the endpoint disabled, hop limit 2", in.Options, err)
	}
	if err := admin.SetOptions(ctx, sim.InstanceID, ec2.Options{HTTPEndpoint: ec2.Enabled, HopLimit: 1}); err != nil {
		t.Fatal(err)
	}
	got = append(got, probe())
	ok, timedOut := imdsCall{"200", 0}, imdsCall{"000", 28}
	want := []seen{
		{HostPUT: ok, ContainerPUT: timedOut, ContainerGET: imdsCall{"401", 0}},
		{HostPUT: ok, ContainerPUT: ok, ContainerGET: imdsCall{"401", 0}},
		{HostPUT: imdsCall{"403", 0}, ContainerPUT: imdsCall{"403", 0}, ContainerGET: imdsCall{"403", 0}},
		{HostPUT: ok, ContainerPUT: timedOut, ContainerGET: imdsCall{"401", 0}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hop limit 1, then 2, then the endpoint disabled, then enabled with hop limit 1 again (-want +got):\n%s", diff)
	}
}

// awsCLI is the AWS CLI from Debian's awscli package (.ci/deps), whatever else is on PATH.
const awsCLI = "/usr/bin/aws"

// TestEC2SimAWSCLI: the AWS CLI commands of the troubleshooting article work against the
// simulator, with the real service's answers and errors (dry run, unknown instance, hop
// limit out of range), and see the change they made.
func TestEC2SimAWSCLI(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	api := "127.0.0.1:8081"
	if _, err := harness.StartSim(ctx, ns, bins.Imdssim, sim.FaultOK, "--ec2", api, "--ec2-apply-after", "0"); err != nil {
		t.Fatal(err)
	}
	env := []string{"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_REGION=" + ec2.DefaultRegion,
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
	aws := func(args ...string) harness.Result {
		t.Helper()
		res, err := ns.Exec(ctx, env, awsCLI, append([]string{"--endpoint-url", "http://" + api, "--output", "json"}, args...)...)
		if err != nil {
			t.Fatalf("%v (install the Debian package awscli: .ci/deps)", err)
		}
		return res
	}
	type options struct {
		State                   string
		HttpTokens              string
		HttpPutResponseHopLimit int
		HttpEndpoint            string
		HttpProtocolIpv6        string
		InstanceMetadataTags    string
	}
	describe := func() []options {
		res := aws("ec2", "describe-instances", "--instance-ids", sim.InstanceID, "--query", "Reservations[].Instances[].MetadataOptions")
		var got []options
		if err := json.Unmarshal([]byte(res.Stdout), &got); res.ExitCode != 0 || err != nil {
			t.Fatalf("describe-instances: exit %d, %v\n%s%s", res.ExitCode, err, res.Stdout, res.Stderr)
		}
		return got
	}
	if diff := cmp.Diff([]options{{"applied", "required", 2, "enabled", "disabled", "disabled"}}, describe()); diff != "" {
		t.Errorf("describe-instances MetadataOptions (-want +got):\n%s", diff)
	}

	errorsSeen := []struct {
		name string
		args []string
		want string
	}{
		{"dry run", []string{"--http-endpoint", "enabled", "--dry-run"},
			"An error occurred (DryRunOperation) when calling the ModifyInstanceMetadataOptions operation: Request would have succeeded, but DryRun flag is set."},
		{"unknown instance", []string{"--instance-id", "i-0123456789abcdef1", "--http-endpoint", "enabled"},
			"An error occurred (InvalidInstanceID.NotFound) when calling the ModifyInstanceMetadataOptions operation: The instance ID 'i-0123456789abcdef1' does not exist"},
		{"hop limit out of range", []string{"--http-put-response-hop-limit", "65"},
			"An error occurred (InvalidParameterValue) when calling the ModifyInstanceMetadataOptions operation: Value (65) for parameter httpPutResponseHopLimit is invalid. Valid values are integers from 1 to 64."},
	}
	for _, e := range errorsSeen {
		args := append([]string{"ec2", "modify-instance-metadata-options"}, e.args...)
		if !strings.Contains(strings.Join(e.args, " "), "--instance-id") {
			args = append(args, "--instance-id", sim.InstanceID)
		}
		res := aws(args...)
		if res.ExitCode != 254 || strings.TrimSpace(res.Stderr) != e.want {
			t.Errorf("%s: exit %d, stderr %q; want 254 and %q", e.name, res.ExitCode, strings.TrimSpace(res.Stderr), e.want)
		}
	}

	res := aws("ec2", "modify-instance-metadata-options", "--instance-id", sim.InstanceID, "--http-endpoint", "enabled", "--http-put-response-hop-limit", "3")
	var modified struct {
		InstanceId              string
		InstanceMetadataOptions options
	}
	if err := json.Unmarshal([]byte(res.Stdout), &modified); res.ExitCode != 0 || err != nil {
		t.Fatalf("modify-instance-metadata-options: exit %d, %v\n%s%s", res.ExitCode, err, res.Stdout, res.Stderr)
	}
	if modified.InstanceId != sim.InstanceID || modified.InstanceMetadataOptions != (options{"pending", "required", 3, "enabled", "disabled", "disabled"}) {
		t.Errorf("modify answered %+v, want the new options pending", modified)
	}
	if diff := cmp.Diff([]options{{"applied", "required", 3, "enabled", "disabled", "disabled"}}, describe()); diff != "" {
		t.Errorf("describe-instances after the change (-want +got):\n%s", diff)
	}
}
