package remediate

import (
	"context"
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/tests/tree"
	"github.com/zclconf/go-cty/cty"
)

// TestRateLimitCallerRefuses: what Plan refuses before it looks at any firewall (the
// rule itself is tested with real iptables in tests/e2e).
func TestRateLimitCallerRefuses(t *testing.T) {
	root := t.TempDir()
	tree.Write(t, root, map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/:/bin/sh\npoller:x:1001:1001::/:/bin/sh\n"})
	env := testEnv(root, false)
	tests := []struct {
		name  string
		user  string
		rate  cty.Value
		burst cty.Value
		err   string
	}{
		{"root", "root", cty.NullVal(cty.String), cty.NullVal(cty.Number), "never limits root"},
		{"uid 0 by another name", "toor", cty.NullVal(cty.String), cty.NullVal(cty.Number), "never limits root"},
		{"uid 0 by number", "0", cty.NullVal(cty.String), cty.NullVal(cty.Number), "never limits root"},
		{"unknown user", "nosuch", cty.NullVal(cty.String), cty.NullVal(cty.Number), `user "nosuch": no such user`},
		{"bad rate", "poller", cty.StringVal("10/fortnight"), cty.NullVal(cty.Number), `rate "10/fortnight"`},
		{"rate with words", "poller", cty.StringVal("1/s -j ACCEPT"), cty.NullVal(cty.Number), `rate "1/s -j ACCEPT"`},
		{"zero burst", "poller", cty.StringVal("5/minute"), cty.NumberIntVal(0), "burst 0"},
		{"fractional burst", "poller", cty.StringVal("5/minute"), cty.NumberFloatVal(1.5), "burst 1.5"},
	}
	for _, tt := range tests {
		args := cty.ObjectVal(map[string]cty.Value{"user": cty.StringVal(tt.user), "rate": tt.rate, "burst": tt.burst})
		_, err := RateLimitCaller{}.Plan(context.Background(), env, args)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: Plan error %v; want one with %q", tt.name, err, tt.err)
		}
	}
}

func TestRateLimitSpec(t *testing.T) {
	got := strings.Join(rateLimitSpec("ipv6", 1001, "5/minute", 3), " ")
	want := "-d fd00:ec2::254/128 -p tcp -m tcp --dport 80 --tcp-flags FIN,SYN,RST,ACK SYN -m owner --uid-owner 1001 -m hashlimit --hashlimit-above 5/minute --hashlimit-burst 3 --hashlimit-name imdsmend-1001 -m comment --comment imdsmend:rate_limit_caller uid 1001 -j REJECT --reject-with tcp-reset"
	if got != want {
		t.Errorf("spec\n got %s\nwant %s", got, want)
	}
}
