package ec2api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeEC2 answers the EC2 Query protocol's three calls with the real XML shapes, for one
// instance; the full simulator is tests/ec2sim.
type fakeEC2 struct {
	mu    sync.Mutex
	calls map[string]int // by Action, dry runs as Action+"/DryRun"
	// errs answers an action with an error code (and message) instead, until used up.
	errs map[string][]string
	opts map[string]string // the instance's metadata options, by XML element name
	// pendingFor is how many DescribeInstances after a change still say "pending".
	pendingFor, pendingLeft int
	body                    string // a raw body for every answer, when set
}

func newFake() *fakeEC2 {
	return &fakeEC2{calls: map[string]int{}, errs: map[string][]string{}, opts: map[string]string{
		"httpEndpoint": "disabled", "httpTokens": "optional", "httpPutResponseHopLimit": "1",
		"httpProtocolIpv6": "disabled", "instanceMetadataTags": "disabled",
	}}
}

const testID = "i-0123456789abcdef0"

func (f *fakeEC2) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	action := r.Form.Get("Action")
	key := action
	if r.Form.Get("DryRun") == "true" {
		key += "/DryRun"
	}
	f.calls[key]++
	if f.body != "" {
		fmt.Fprint(w, f.body)
		return
	}
	if q := f.errs[key]; len(q) > 0 {
		f.errs[key] = q[1:]
		code, msg, _ := strings.Cut(q[0], ":")
		status := 400
		if code == "RequestLimitExceeded" {
			status = 503
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>req-1</RequestID></Response>`, code, msg)
		return
	}
	switch key {
	case "DescribeInstances":
		if id := r.Form.Get("InstanceId.1"); id != "" && id != testID {
			w.WriteHeader(400)
			fmt.Fprintf(w, `<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>The instance ID '%s' does not exist</Message></Error></Errors><RequestID>req-2</RequestID></Response>`, id)
			return
		}
		state := "applied"
		if f.pendingLeft > 0 {
			f.pendingLeft--
			state = "pending"
		}
		fmt.Fprintf(w, `<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>req-3</requestId><reservationSet><item><reservationId>r-1</reservationId><instancesSet><item><instanceId>%s</instanceId><imageId>ami-1</imageId><instanceState><code>16</code><name>running</name></instanceState><ipv6Address>2001:db8::1</ipv6Address><tagSet><item><key>Name</key><value>web</value></item></tagSet><metadataOptions><state>%s</state>%s</metadataOptions></item></instancesSet></item></reservationSet></DescribeInstancesResponse>`,
			testID, state, f.xmlOpts())
	case "ModifyInstanceMetadataOptions/DryRun":
		w.WriteHeader(412)
		fmt.Fprint(w, `<Response><Errors><Error><Code>DryRunOperation</Code><Message>Request would have succeeded, but DryRun flag is set.</Message></Error></Errors><RequestID>req-4</RequestID></Response>`)
	case "ModifyInstanceMetadataOptions":
		for form, el := range map[string]string{"HttpEndpoint": "httpEndpoint", "HttpTokens": "httpTokens",
			"HttpPutResponseHopLimit": "httpPutResponseHopLimit", "HttpProtocolIpv6": "httpProtocolIpv6", "InstanceMetadataTags": "instanceMetadataTags"} {
			if v := r.Form.Get(form); v != "" {
				f.opts[el] = v
			}
		}
		f.pendingLeft = f.pendingFor
		fmt.Fprintf(w, `<ModifyInstanceMetadataOptionsResponse><requestId>req-5</requestId><instanceId>%s</instanceId><instanceMetadataOptions><state>pending</state>%s</instanceMetadataOptions></ModifyInstanceMetadataOptionsResponse>`, testID, f.xmlOpts())
	case "GetInstanceMetadataDefaults":
		fmt.Fprint(w, `<GetInstanceMetadataDefaultsResponse><requestId>req-6</requestId><accountLevel><httpTokens>required</httpTokens><httpPutResponseHopLimit>2</httpPutResponseHopLimit><managedBy>declarative-policy</managedBy><managedExceptionMessage>Ask the platform team</managedExceptionMessage></accountLevel></GetInstanceMetadataDefaultsResponse>`)
	default:
		w.WriteHeader(400)
		fmt.Fprintf(w, `<Response><Errors><Error><Code>InvalidAction</Code><Message>%s</Message></Error></Errors><RequestID>req-7</RequestID></Response>`, action)
	}
}

func (f *fakeEC2) xmlOpts() string {
	var b strings.Builder
	for _, k := range []string{"httpTokens", "httpPutResponseHopLimit", "httpEndpoint", "httpProtocolIpv6", "instanceMetadataTags"} {
		fmt.Fprintf(&b, "<%s>%s</%s>", k, f.opts[k], k)
	}
	return b.String()
}

// setup points the SDK at a fake and isolates it from this machine's AWS files, IMDS
// and proxies; creds says whether environment credentials exist.
func setup(t *testing.T, f *fakeEC2, creds bool) *Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_EC2": srv.URL, "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:1",
		"AWS_PROFILE": "", "AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_ROLE_ARN": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "", "HTTP_PROXY": "", "HTTPS_PROXY": "", "http_proxy": "", "https_proxy": "",
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
	} {
		t.Setenv(k, v)
	}
	if creds {
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	}
	c, err := New(context.Background(), Config{Region: "eu-west-1", NoIMDS: true, MaxBackoff: time.Millisecond,
		Poll: Poll{Attempts: 3, Interval: time.Millisecond, MaxInterval: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDescribe(t *testing.T) {
	f := newFake()
	c := setup(t, f, true)
	got, err := c.Describe(context.Background(), testID)
	if err != nil {
		t.Fatal(err)
	}
	want := &Instance{ID: testID, State: "running", ImageID: "ami-1", IPv6: []string{"2001:db8::1"}, Tags: map[string]string{"Name": "web"},
		MetadataOptions: MetadataOptions{State: "applied", HTTPEndpoint: "disabled", HTTPTokens: "optional", HopLimit: 1,
			HTTPProtocolIPv6: "disabled", InstanceMetadataTags: "disabled"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Describe (-want +got):\n%s", d)
	}
	src, err := c.Credentials(context.Background())
	if err != nil || src != "EnvConfigCredentials" {
		t.Errorf("Credentials = %q, %v; want EnvConfigCredentials", src, err)
	}
	list, err := c.List(context.Background(), Filter{Name: "tag:Name", Values: []string{"web"}})
	if err != nil || len(list) != 1 || list[0].ID != testID {
		t.Errorf("List = %v, %v", list, err)
	}
}

func TestDefaults(t *testing.T) {
	c := setup(t, newFake(), true)
	got, err := c.Defaults(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := &Defaults{HTTPTokens: "required", HopLimit: 2, ManagedBy: "declarative-policy", ManagedExceptionMessage: "Ask the platform team"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Defaults (-want +got):\n%s", d)
	}
}

func TestModify(t *testing.T) {
	for _, tc := range []struct {
		name       string
		id         string
		change     Change
		errs       map[string][]string
		pendingFor int
		body       string
		creds      bool
		wantKind   Kind
		wantSent   bool // an Instance comes back: the change was made
		wantCalls  map[string]int
		wantOpts   map[string]string
	}{
		{name: "applied after pending", change: Change{HTTPEndpoint: "enabled", HopLimit: 2}, pendingFor: 2, creds: true, wantSent: true,
			wantCalls: map[string]int{"ModifyInstanceMetadataOptions/DryRun": 1, "ModifyInstanceMetadataOptions": 1, "DescribeInstances": 3},
			wantOpts:  map[string]string{"httpEndpoint": "enabled", "httpPutResponseHopLimit": "2"}},
		{name: "never applied is bounded", change: Change{HTTPEndpoint: "enabled"}, pendingFor: 100, creds: true, wantKind: KindNotApplied, wantSent: true,
			wantCalls: map[string]int{"ModifyInstanceMetadataOptions/DryRun": 1, "ModifyInstanceMetadataOptions": 1, "DescribeInstances": 3}},
		{name: "unauthorized: one call, nothing changed", change: Change{HTTPEndpoint: "enabled"}, creds: true, wantKind: KindUnauthorized,
			errs:      map[string][]string{"ModifyInstanceMetadataOptions/DryRun": {"UnauthorizedOperation:You are not authorized to perform this operation."}},
			wantCalls: map[string]int{"ModifyInstanceMetadataOptions/DryRun": 1}},
		{name: "tokens enforced", change: Change{HTTPTokens: "optional"}, creds: true, wantKind: KindTokensEnforced,
			errs:      map[string][]string{"ModifyInstanceMetadataOptions/DryRun": {"UnsupportedOperation:HttpTokensEnforced is enabled for this account"}},
			wantCalls: map[string]int{"ModifyInstanceMetadataOptions/DryRun": 1}},
		{name: "declarative policy", change: Change{HTTPTokens: "optional"}, creds: true, wantKind: KindDeclarativePolicy,
			errs:      map[string][]string{"ModifyInstanceMetadataOptions/DryRun": {"UnsupportedOperation:The operation is blocked by a declarative policy: Ask the platform team"}},
			wantCalls: map[string]int{"ModifyInstanceMetadataOptions/DryRun": 1}},
		{name: "hop limit out of range", change: Change{HopLimit: 65}, creds: true, wantKind: KindInvalidParameter,
			errs:      map[string][]string{"ModifyInstanceMetadataOptions/DryRun": {"InvalidParameterValue:The HttpPutResponseHopLimit must be between 1 and 64"}},
			wantCalls: map[string]int{"ModifyInstanceMetadataOptions/DryRun": 1}},
		{name: "throttled, then through with backoff", change: Change{HTTPEndpoint: "enabled"}, creds: true, wantSent: true,
			errs:      map[string][]string{"ModifyInstanceMetadataOptions": {"RequestLimitExceeded:Request limit exceeded.", "RequestLimitExceeded:Request limit exceeded."}},
			wantCalls: map[string]int{"ModifyInstanceMetadataOptions/DryRun": 1, "ModifyInstanceMetadataOptions": 3, "DescribeInstances": 1}},
		{name: "throttled past the retries", change: Change{HTTPEndpoint: "enabled"}, creds: true, wantKind: KindThrottled,
			errs:      map[string][]string{"ModifyInstanceMetadataOptions/DryRun": strings.Split(strings.Repeat("RequestLimitExceeded:slow down,", 5), ",")},
			wantCalls: map[string]int{"ModifyInstanceMetadataOptions/DryRun": DefaultMaxAttempts}},
		{name: "unknown instance", id: "i-00000000000000000", change: Change{HTTPEndpoint: "enabled"}, creds: true, wantKind: KindNotFound,
			errs:      map[string][]string{"ModifyInstanceMetadataOptions/DryRun": {"InvalidInstanceID.NotFound:The instance ID 'i-00000000000000000' does not exist"}},
			wantCalls: map[string]int{"ModifyInstanceMetadataOptions/DryRun": 1}},
		{name: "malformed response", change: Change{HTTPEndpoint: "enabled"}, creds: true, body: "<html>captive portal", wantKind: KindMalformed,
			wantCalls: map[string]int{"ModifyInstanceMetadataOptions/DryRun": 1}},
		{name: "no credentials: no call", change: Change{HTTPEndpoint: "enabled"}, wantKind: KindNoCredentials, wantCalls: map[string]int{}},
		{name: "nothing to change", creds: true, wantKind: KindInvalidParameter, wantCalls: map[string]int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.errs, f.pendingFor, f.body = tc.errs, tc.pendingFor, tc.body
			if f.errs == nil {
				f.errs = map[string][]string{}
			}
			c := setup(t, f, tc.creds)
			id := tc.id
			if id == "" {
				id = testID
			}
			got, err := c.Modify(context.Background(), id, tc.change)
			if k := KindOf(err); k != tc.wantKind {
				t.Errorf("Modify error kind = %q (%v), want %q", k, err, tc.wantKind)
			}
			var e *Error
			if err != nil && (!errors.As(err, &e) || e.Hint() == "" && e.Kind != KindOther) {
				t.Errorf("Modify error %v has no hint", err)
			}
			if (got != nil) != tc.wantSent {
				t.Errorf("Modify instance = %v, want one: %v", got, tc.wantSent)
			}
			if d := cmp.Diff(tc.wantCalls, f.calls); d != "" {
				t.Errorf("calls (-want +got):\n%s", d)
			}
			for k, v := range tc.wantOpts {
				if f.opts[k] != v {
					t.Errorf("%s = %q, want %q", k, f.opts[k], v)
				}
			}
		})
	}
}

func TestNoRegion(t *testing.T) {
	_, err := New(context.Background(), Config{})
	if KindOf(err) != KindNoRegion {
		t.Errorf("New without a region: %v, want %s", err, KindNoRegion)
	}
}

func TestNoCredentialsMessage(t *testing.T) {
	c := setup(t, newFake(), false)
	_, err := c.Describe(context.Background(), testID)
	if KindOf(err) != KindNoCredentials || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") || !strings.Contains(err.Error(), "IMDS is not used") {
		t.Errorf("Describe without credentials: %v", err)
	}
}
