package imdsmend

import (
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/facts/imds"
)

// TestDefaultPolicyNamesTheEndpoint: with the endpoint overridden
// (AWS_EC2_METADATA_SERVICE_ENDPOINT), what the IMDS rules say names the endpoint probed,
// not 169.254.169.254, which may not be in use at all.
func TestDefaultPolicyNamesTheEndpoint(t *testing.T) {
	const endpoint = "http://127.0.0.1:1338"
	tests := []struct {
		imds imds.Result
		rule string
	}{
		{imds: imds.Result{Class: imds.ClassTimeout, Stage: imds.StageToken}, rule: "imds_unreachable"},
		{imds: imds.Result{Class: imds.ClassConnectionRefused, Stage: imds.StageToken}, rule: "imds_unreachable"},
		{imds: imds.Result{Class: imds.ClassHTTP404, Status: 404, Stage: imds.StageGet}, rule: "imds_http_error"},
		{imds: imds.Result{Class: imds.ClassHTTP429, Status: 429, Stage: imds.StageGet, Attempts: 3}, rule: "imds_throttled"},
	}
	p := loadDefault(t)
	for _, tt := range tests {
		t.Run(tt.imds.Class, func(t *testing.T) {
			tt.imds.Endpoint = endpoint
			v, err := facts.Value(&facts.Facts{IMDS: &tt.imds})
			if err != nil {
				t.Fatal(err)
			}
			fired := false
			for _, f := range p.Evaluate(v, nil).Findings {
				fired = fired || f.Rule == tt.rule
				if text := f.Summary + "\n" + f.Hint; strings.Contains(text, "169.254.169.254") {
					t.Errorf("%s names 169.254.169.254 while IMDS is at %s:\n%s", f.Rule, endpoint, text)
				}
				if f.Rule == "imds_unreachable" && !strings.Contains(f.Hint, endpoint) {
					t.Errorf("imds_unreachable hint %q does not name %s", f.Hint, endpoint)
				}
			}
			if !fired {
				t.Errorf("%s did not fire", tt.rule)
			}
		})
	}
}
