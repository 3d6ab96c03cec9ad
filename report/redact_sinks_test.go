package report

import (
	"bytes"
	"strings"
	"testing"
)

// secretDetail is a no_proxy diff line of a docker drop-in that names two secrets.
const secretDetail = `Environment="HTTP_PROXY=http://proxy.corp:3128" "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY" "proxy_password=hunter2pass"`

var secretValues = []string{"wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY", "hunter2pass"}

// TestRenderersRedactActions checks the text and JSON reports redact an action's detail
// and error themselves, whatever the fixer put there, and leave the caller's report as it was.
func TestRenderersRedactActions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(*bytes.Buffer, *Report) error
	}{
		{"text", func(b *bytes.Buffer, r *Report) error { return WriteText(b, r) }},
		{"json", func(b *bytes.Buffer, r *Report) error { return WriteJSON(b, r) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Report{Command: "plan", Actions: []Action{{
				ID: "no_proxy-1", Kind: "no_proxy", Status: "failed",
				Detail: secretDetail, Error: "write /etc/environment: proxy_password=hunter2pass",
			}}}
			var b bytes.Buffer
			if err := tc.write(&b, r); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			for _, s := range secretValues {
				if strings.Contains(out, s) {
					t.Errorf("%s report holds the secret %q:\n%s", tc.name, s, out)
				}
			}
			if !strings.Contains(out, "HTTP_PROXY=http://proxy.corp:3128") || !strings.Contains(out, "REDACTED") {
				t.Errorf("%s report lost the non-secret text or the mask:\n%s", tc.name, out)
			}
			if r.Actions[0].Detail != secretDetail {
				t.Errorf("rendering changed the caller's report: %q", r.Actions[0].Detail)
			}
		})
	}
}
