package imdsmend

import (
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/internal/types"
)

// TestDefaultPolicyNamesTheEndpoint: with the endpoint overridden
// (AWS_EC2_METADATA_SERVICE_ENDPOINT), what the IMDS rules say names the endpoint probed,
// not 169.254.169.254, which may not be in use at all.
func TestDefaultPolicyNamesTheEndpoint(t *testing.T) {
	const endpoint = "http://127.0.0.1:1338"
	tests := []struct {
		imds types.IMDS
		rule string
	}{
		{imds: types.IMDS{Class: types.ClassTimeout, Stage: types.StageToken}, rule: "imds_unreachable"},
		{imds: types.IMDS{Class: types.ClassConnectionRefused, Stage: types.StageToken}, rule: "imds_unreachable"},
		{imds: types.IMDS{Class: types.ClassHTTP404, Status: 404, Stage: types.StageGet}, rule: "imds_http_error"},
		{imds: types.IMDS{Class: types.ClassHTTP429, Status: 429, Stage: types.StageGet, Attempts: 3}, rule: "imds_throttled"},
	}
	p := loadDefault(t)
	for _, tt := range tests {
		t.Run(string(tt.imds.Class), func(t *testing.T) {
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
