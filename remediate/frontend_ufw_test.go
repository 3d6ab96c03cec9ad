package remediate

import (
	"slices"
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/facts/firewall"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/tests/tree"
)

func TestUFWTupleRule(t *testing.T) {
	tests := []struct {
		tuple, want, err string
	}{
		{"deny any any 169.254.169.254 any 0.0.0.0/0 out", "deny out from any to 169.254.169.254", ""},
		{"allow tcp 80 169.254.169.254 any 0.0.0.0/0 out comment=696d64736d656e64", "allow out proto tcp from any to 169.254.169.254 port 80 comment imdsmend", ""},
		{"reject tcp 80 fd00:ec2::254 1024 ::/0 out_eth0", "reject out on eth0 proto tcp from any port 1024 to fd00:ec2::254 port 80", ""},
		{"allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 Apache - in", "", "application or route rule"},
		{"deny_log any any 169.254.169.254 any 0.0.0.0/0 out", "", "not one imdsmend rewrites"},
		{"deny any any 169.254.169.254 any 0.0.0.0/0 sideways", "", "direction"},
	}
	for _, tt := range tests {
		got, err := ufwTupleRule(tt.tuple)
		if strings.Join(got, " ") != tt.want || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%q: %q, %v; want %q, %q", tt.tuple, got, err, tt.want, tt.err)
		}
	}
}

// A rule's number counts user.rules' rules first, then user6.rules'.
func TestUFWUserRuleNumber(t *testing.T) {
	root := t.TempDir()
	p := paths.New(root)
	files := map[string]string{
		paths.UFWUserRules:  "*filter\n### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 22 -j ACCEPT\n### tuple ### deny any any 169.254.169.254 any 0.0.0.0/0 out\n-A ufw-user-output -d 169.254.169.254 -j DROP\nCOMMIT\n",
		paths.UFWUser6Rules: "*filter\n### tuple ### deny any any fd00:ec2::254 any ::/0 out\n-A ufw6-user-output -d fd00:ec2::254 -j DROP\nCOMMIT\n",
	}
	tree.Write(t, root, files)
	for _, tt := range []struct {
		src    firewall.Source
		rule   string
		number int
	}{
		{firewall.Source{FrontEnd: "ufw", File: paths.UFWUserRules, Line: 5}, "deny out from any to 169.254.169.254", 2},
		{firewall.Source{FrontEnd: "ufw", File: paths.UFWUser6Rules, Line: 3}, "deny out from any to fd00:ec2::254", 3},
	} {
		rule, n, err := ufwUserRule(p, tt.src)
		if err != nil || strings.Join(rule, " ") != tt.rule || n != tt.number {
			t.Errorf("%+v: %q #%d (%v), want %q #%d", tt.src, rule, n, err, tt.rule, tt.number)
		}
	}
	if _, _, err := ufwUserRule(p, firewall.Source{FrontEnd: "ufw", File: paths.UFWUserRules, Line: 1}); err == nil {
		t.Error("a line before any tuple has a rule")
	}
	if got := withoutComment([]string{"allow", "out", "comment", "x"}); !slices.Equal(got, []string{"allow", "out"}) {
		t.Errorf("withoutComment: %q", got)
	}
}
