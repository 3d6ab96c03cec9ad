package route

import "testing"

func TestJudgeRoute(t *testing.T) {
	tests := []struct {
		name   string
		route  Route
		ok     bool
		reason string
	}{
		{"local, as in the test namespaces", Route{Type: "local", Interface: "lo"}, true, ""},
		{"via the primary ENI", Route{Type: "unicast", Interface: "ens5", PrimaryInterface: "ens5"}, true, ""},
		{"no default route to compare with", Route{Type: "unicast", Interface: "eth0"}, true, ""},
		{"via a secondary ENI", Route{Type: "unicast", Interface: "ens6", PrimaryInterface: "ens5"}, false,
			"IMDS traffic leaves by ens6, not by the primary interface ens5"},
		{"prohibit", Route{Type: "prohibit", Prefix: "169.254.169.254/32", Table: "main"}, false,
			"prohibit route 169.254.169.254/32 in table main"},
		{"blackhole", Route{Type: "blackhole", Prefix: "169.254.0.0/16", Table: "main"}, false,
			"blackhole route 169.254.0.0/16 in table main"},
		{"none", Route{Type: "none"}, false, "no route to 169.254.169.254"},
	}
	for _, tt := range tests {
		ok, reason := judgeRoute(&tt.route)
		if ok != tt.ok || reason != tt.reason {
			t.Errorf("%s: judgeRoute = %v, %q; want %v, %q", tt.name, ok, reason, tt.ok, tt.reason)
		}
	}
}
