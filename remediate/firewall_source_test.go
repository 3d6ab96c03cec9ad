package remediate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/facts/firewall"
	"github.com/imdsmend/imdsmend/internal/paths"
)

const persistedV4 = "# kept by netfilter-persistent\r\n*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -d 10.0.0.1 -j ACCEPT\n-A OUTPUT -d 169.254.169.254 -p tcp --dport 80 -j REJECT\n-A OUTPUT -d 169.254.169.254 -p tcp --dport 80 -j REJECT\nCOMMIT"

func TestFirewallSourceMend(t *testing.T) {
	root := t.TempDir()
	p := paths.New(root)
	file := p.File(paths.IptablesRulesV4)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(persistedV4), 0o640); err != nil {
		t.Fatal(err)
	}
	spec := "-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable"
	d := firewallDeleteData{Backend: "nft", Family: "ipv4", Table: "filter", Chain: "OUTPUT", Spec: spec}
	tests := []struct {
		src  firewall.Source
		note string
	}{
		{firewall.Source{FrontEnd: firewall.FrontEndNetfilterPersistent, File: paths.IptablesRulesV4, Line: 6}, ""},
		{firewall.Source{FrontEnd: firewall.FrontEndNetfilterPersistent, File: paths.IptablesRulesV4, Line: 5}, ""},
		// The same line twice is one cut.
		{firewall.Source{FrontEnd: firewall.FrontEndNetfilterPersistent, File: paths.IptablesRulesV4, Line: 5}, ""},
		{firewall.Source{FrontEnd: firewall.FrontEndNetfilterPersistent, File: paths.IptablesRulesV4, Line: 4}, "no longer reads as the rule"},
		{firewall.Source{FrontEnd: firewall.FrontEndNetfilterPersistent, File: paths.IptablesRulesV4, Line: 99}, "no line 99"},
		{firewall.Source{FrontEnd: firewall.FrontEndUFW, File: paths.UFWUserRules, Line: 7}, "returns with the next ufw reload or boot, from /etc/ufw/user.rules:7"},
		{firewall.Source{FrontEnd: firewall.FrontEndUFW}, "ufw may add it again"},
		{firewall.Source{FrontEnd: firewall.FrontEndLive}, ""},
	}
	for _, tt := range tests {
		note := planMend(p, &d, tt.src)
		if tt.note == "" && note != "" || !strings.Contains(note, tt.note) {
			t.Errorf("%+v: note %q, want %q", tt.src, note, tt.note)
		}
	}
	if d.File == nil || len(d.File.Cuts) != 2 || d.File.Cuts[0].Line != 5 {
		t.Fatalf("planned %+v", d.File)
	}
	if _, err := d.File.apply(p); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(file)
	want := "# kept by netfilter-persistent\r\n*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -d 10.0.0.1 -j ACCEPT\nCOMMIT"
	if string(got) != want {
		t.Errorf("mended file:\n%q\nwant\n%q", got, want)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	did, err := d.File.undo(p)
	if err != nil || did == "" {
		t.Fatalf("undo: %q, %v", did, err)
	}
	if got, _ := os.ReadFile(file); string(got) != persistedV4 {
		t.Errorf("undo left %q", got)
	}
	// Undone already: nothing to do.
	if did, err := d.File.undo(p); err != nil || did != "" {
		t.Errorf("second undo: %q, %v", did, err)
	}
	// A file that changed since the plan is not written.
	if err := os.WriteFile(file, []byte(persistedV4+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	var skip *skipError
	if _, err := d.File.apply(p); !errors.As(err, &skip) {
		t.Errorf("apply on a changed file: %v, want a skip", err)
	}
}

func TestNftSingleRuleLine(t *testing.T) {
	for line, want := range map[string]bool{
		"\tip daddr 169.254.169.254 reject\n":          true,
		"  ip daddr 169.254.169.254 counter drop;  \n": true,
		"ip daddr 1.1.1.1 drop; ip daddr 2.2.2.2 drop": false,
		"chain output { ip daddr 1.1.1.1 drop }":       false,
		"policy drop;":                                 false,
		"# comment":                                    false,
	} {
		if got := firewall.NftSingleRuleLine(line); got != want {
			t.Errorf("%q: %v, want %v", line, got, want)
		}
	}
}
