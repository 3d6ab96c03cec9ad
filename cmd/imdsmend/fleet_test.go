package main

import (
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/tests/tree"
)

// A fleet policy whose rule reads an instance fact; the same text is no instance policy.
const fleetCLIPolicy = `
rule "endpoint_off" {
  when     = facts.instance.metadata_options.http_endpoint == "disabled"
  severity = "critical"
  summary  = "${facts.instance.id}: endpoint disabled"
  remediate "metadata_options" {
    http_endpoint = "enabled"
  }
}
`

// TestFleetPolicyCommands: validate --fleet and test --fleet read the fleet policy against
// the fleet facts; fleet commands refuse a broken policy, bad flags and --format before
// calling AWS.
func TestFleetPolicyCommands(t *testing.T) {
	const fleetTest = `test "off" {
  facts  = { instance = { id = "i-1", metadata_options = { http_endpoint = "disabled" } } }
  expect = ["endpoint_off"]
}
`
	tests := []struct {
		name  string
		files map[string]string
		args  []string // {dir} is replaced
		code  int
		out   string
		err   string
	}{
		{"validate --fleet, a named file must exist", nil, []string{"validate", "--fleet", "--policy", "{dir}/none.hcl"}, 1, "", "Cannot read policy"},
		{"validate --fleet", map[string]string{"fleet.hcl": fleetCLIPolicy}, []string{"validate", "--fleet", "--policy", "{dir}/fleet.hcl"}, 0,
			"fleet policy is valid: 1 rules (0 disabled) from {dir}/fleet.hcl", ""},
		{"a fleet policy is no instance policy", map[string]string{"fleet.hcl": fleetCLIPolicy}, []string{"validate", "--policy", "{dir}/fleet.hcl"}, 1,
			"", `Unsupported attribute`},
		{"an instance fact in a fleet policy", map[string]string{"fleet.hcl": strings.Replace(fleetCLIPolicy, "facts.instance.metadata_options.http_endpoint", "facts.imds.class", 1)},
			[]string{"validate", "--fleet", "--policy", "{dir}/fleet.hcl"}, 1, "", `Unsupported attribute`},
		{"test --fleet", map[string]string{"fleet.hcl": fleetCLIPolicy, "fleet.d/a_test.hcl": fleetTest}, []string{"test", "--fleet", "--policy", "{dir}/fleet.hcl"}, 0,
			"ok  \t{dir}/fleet.d\t1 tests", ""},
		{"fleet audit with a broken policy", map[string]string{"fleet.hcl": `rule "x" {}`}, []string{"fleet", "audit", "--policy", "{dir}/fleet.hcl"}, 1,
			"", "the fleet policy has errors; nothing was run"},
		{"fleet --format", nil, []string{"fleet", "audit", "--format", "yaml"}, 1, "", "--format must be text, json or csv"},
		{"fleet --filter", nil, []string{"fleet", "audit", "--filter", "tag:Team"}, 1, "", `--filter "tag:Team": a filter is NAME=VALUE`},
		{"fleet undo without --last", nil, []string{"fleet", "undo"}, 1, "", "give --last"},
		{"fleet --only", nil, []string{"fleet", "plan", "--only", "endpoint_disabld"}, 1, "", `Did you mean "endpoint_disabled"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tree.Write(t, dir, tt.files)
			var args []string
			for _, a := range tt.args {
				args = append(args, strings.ReplaceAll(a, "{dir}", dir))
			}
			stdout, stderr, code := runCLI(t, args...)
			if code != tt.code || !strings.Contains(stdout, strings.ReplaceAll(tt.out, "{dir}", dir)) || !strings.Contains(stderr, strings.ReplaceAll(tt.err, "{dir}", dir)) {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s\nwant %q and %q", code, tt.code, stdout, stderr, tt.out, tt.err)
			}
		})
	}
}
