package ec2

import (
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// FuzzQuery: whatever the form, the simulator answers with one well-formed XML document —
// the action's response on 200, the Query API's error document otherwise — and never
// panics.
func FuzzQuery(f *testing.F) {
	for _, seed := range []string{
		"Action=DescribeInstances&Version=2016-11-15",
		"Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-0123456789abcdef0&InstanceId.2=i-12345678",
		"Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3ATeam&Filter.1.Value.1=w*&MaxResults=5&NextToken=ZWMyc2ltLXBhZ2U6MA",
		"Action=ModifyInstanceMetadataOptions&Version=2016-11-15&InstanceId=i-0123456789abcdef0&HttpPutResponseHopLimit=64&HttpTokens=optional&DryRun=true",
		"Action=ModifyInstanceMetadataOptions&InstanceId=i-0123456789abcdef0&HttpEndpoint=disabled",
		"Action=GetInstanceMetadataDefaults&Version=2016-11-15",
		"Action=DescribeRegions&RegionName.1=eu-west-1",
		"Action=DescribeImages&ImageId.1=ami-0abcdef1234567890",
		"Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fimdsmend-fleet&RoleSessionName=x",
		"Action=%zz", "Filter.1.Value.1=x&Action=DescribeInstances", "",
	} {
		f.Add(seed, "us-east-1")
	}
	f.Fuzz(func(t *testing.T, body, region string) {
		s := NewDefault(Config{ApplyAfter: 0})
		s.AddRole(RoleARN(DefaultAccount))
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/"+region+"/ec2/aws4_request, SignedHeaders=host, Signature=0")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		var root struct{ XMLName xml.Name }
		if err := xml.Unmarshal(rec.Body.Bytes(), &root); err != nil {
			t.Fatalf("status %d, body not XML: %v\n%s", rec.Code, err, rec.Body)
		}
		name := root.XMLName.Local
		switch {
		case rec.Code == http.StatusOK && strings.HasSuffix(name, "Response") && name != "ErrorResponse":
		case rec.Code >= 400 && (name == "Response" || name == "ErrorResponse"):
		default:
			t.Fatalf("status %d with root <%s>", rec.Code, name)
		}
	})
}

// FuzzWildcard: filter values match as the regular expression with * → .* and ? → . would.
func FuzzWildcard(f *testing.F) {
	for _, seed := range [][2]string{{"we*", "web"}, {"*", ""}, {"a?c", "abc"}, {"*b*", "aaa"}, {"ü*", "üx"}, {"**a", "ba"}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if !utf8Valid(pattern) || !utf8Valid(s) {
			return
		}
		expr := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
		want := regexp.MustCompile("(?s)" + expr).MatchString(s)
		if got := wildcard(pattern, s); got != want {
			t.Errorf("wildcard(%q, %q) = %v, want %v", pattern, s, got, want)
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
