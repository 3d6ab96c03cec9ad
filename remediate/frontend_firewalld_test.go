package remediate

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/facts/firewall"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/tests/tree"
)

// fakeFirewallCmd puts a firewall-cmd on PATH that logs its arguments and fails when they
// match the shell pattern fail; it returns the log's path.
func fakeFirewallCmd(t *testing.T, fail string) string {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	script := "#!/bin/sh\necho \"$*\" >> " + log + "\ncase \"$*\" in " + fail + ") echo 'Error: NOT_RUNNING' >&2; exit 252;; esac\n"
	if err := os.WriteFile(filepath.Join(dir, "firewall-cmd"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	return log
}

func readLog(t *testing.T, log string) []string {
	data, _ := os.ReadFile(log)
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// A firewalld direct rule goes through firewall-cmd, permanent and runtime; undo adds it
// back to both. A runtime failure puts the permanent rule back and skips.
func TestFirewalldDirect(t *testing.T) {
	root := t.TempDir()
	tree.Write(t, root, map[string]string{paths.FirewalldDirect: directXMLFixture})
	env := testEnv(root, false)
	src := firewall.Source{FrontEnd: firewall.FrontEndFirewalld, File: paths.FirewalldDirect, Line: 3}
	rule := "ipv4 filter OUTPUT 0 -d 169.254.169.254 -p tcp --dport 80 -j DROP"
	for _, tt := range []struct {
		name, fail string
		status     types.Status
		log        []string
		undo       []string
	}{
		{"removed", "NOTHING", "", []string{"--permanent --direct --remove-rule " + rule, "--direct --remove-rule " + rule},
			[]string{"--permanent --direct --add-rule " + rule, "--direct --add-rule " + rule}},
		{"runtime fails", "--direct\\ --remove-rule*", types.StatusSkipped, []string{"--permanent --direct --remove-rule " + rule, "--direct --remove-rule " + rule, "--permanent --direct --add-rule " + rule}, nil},
		{"no daemon", "--permanent*", types.StatusSkipped, []string{"--permanent --direct --remove-rule " + rule}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			log := fakeFirewallCmd(t, tt.fail)
			d := firewallDeleteData{Backend: "nft", Family: "ipv4", Table: "filter", Chain: "OUTPUT_direct", Spec: "-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DROP"}
			if note := planMend(env.Paths, &d, src); note != "" || d.Firewalld == nil {
				t.Fatalf("plan: note %q, mend %+v", note, d.Firewalld)
			}
			data, _ := json.Marshal(d)
			c := &Change{Data: data}
			if err := (FirewallDelete{}).Apply(context.Background(), env, c); err != nil {
				t.Fatal(err)
			}
			if c.Status != tt.status || strings.Join(readLog(t, log), "\n") != strings.Join(tt.log, "\n") {
				t.Errorf("status %q (%s), ran:\n%s\nwant %q:\n%s", c.Status, c.Error, strings.Join(readLog(t, log), "\n"), tt.status, strings.Join(tt.log, "\n"))
			}
			if tt.undo == nil {
				return
			}
			os.Remove(log)
			if err := (FirewallDelete{}).Undo(context.Background(), env, c); err != nil {
				t.Fatal(err)
			}
			if got := readLog(t, log); strings.Join(got, "\n") != strings.Join(tt.undo, "\n") {
				t.Errorf("undo ran:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.undo, "\n"))
			}
		})
	}
}

const directXMLFixture = `<?xml version="1.0" encoding="utf-8"?>
<direct>
  <rule ipv="ipv4" table="filter" chain="OUTPUT" priority="0">-d 169.254.169.254 -p tcp --dport 80 -j DROP</rule>
</direct>
`
