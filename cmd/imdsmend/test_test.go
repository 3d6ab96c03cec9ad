package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/tests/tree"
)

const cliPolicy = `
rule "imds_down" {
  when     = facts.imds.class == "timeout"
  severity = "critical"
  summary  = "IMDS is down"
}
`

func TestTestCommand(t *testing.T) {
	const good = `test "down" {
  facts  = { imds = { class = "timeout" } }
  expect = ["imds_down"]
}
`
	const wrong = `test "wrong on purpose" {
  facts  = { imds = { class = "ok" } }
  expect = ["imds_down"]
}
`
	tests := []struct {
		name  string
		files map[string]string // in the policy directory
		args  []string          // after "test --policy DIR/policy.hcl"; {dir} is replaced
		code  int
		want  []string // in stdout, in order
		err   string   // in stderr
	}{
		{
			name:  "built-in tests and tests beside the policy",
			files: map[string]string{"policy.hcl": cliPolicy, "site_test.hcl": good, "policy.d/more_test.hcl": good},
			want: []string{
				"--- PASS: healthy IMDSv2 (<built-in>/policytests/imds_test.hcl:", "ok  \t<built-in>\t",
				"--- PASS: healthy instance (<built-in>/fleettests/fleet_test.hcl:", "ok  \t<built-in fleet>\t",
				"--- PASS: down ({dir}/site_test.hcl:1)", "ok  \t{dir}\t1 tests",
				"--- PASS: down ({dir}/policy.d/more_test.hcl:1)", "ok  \t{dir}/policy.d\t1 tests",
			},
		},
		{
			name:  "a deliberately wrong test fails",
			files: map[string]string{"policy.hcl": cliPolicy, "tests/a_test.hcl": good, "tests/b_test.hcl": wrong},
			args:  []string{"{dir}/tests"},
			code:  1,
			want: []string{
				"--- PASS: down ({dir}/tests/a_test.hcl:1)",
				"--- FAIL: wrong on purpose ({dir}/tests/b_test.hcl:1)\n    findings: want [imds_down], got []\n",
				"FAIL\t{dir}/tests\t1 of 2 tests failed\n",
			},
		},
		{
			name:  "tests that do not load",
			files: map[string]string{"policy.hcl": cliPolicy, "tests/a_test.hcl": `test "t" { expect = ["imds_dwn"] }`},
			args:  []string{"{dir}/tests"},
			code:  1,
			want:  []string{"FAIL\t{dir}/tests\t[the tests do not load]\n"},
			err:   `The policy has no rule "imds_dwn". Did you mean "imds_down"?`,
		},
		{
			name:  "a directory without tests",
			files: map[string]string{"policy.hcl": cliPolicy, "empty/README": ""},
			args:  []string{"{dir}/empty"},
			code:  1,
			err:   "imdsmend: no *_test.hcl files in {dir}/empty",
		},
		{
			name:  "a broken policy runs no test",
			files: map[string]string{"policy.hcl": `rule "x" {}`, "site_test.hcl": good},
			code:  1,
			err:   "the policy has errors; nothing was run",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tree.Write(t, dir, tt.files)
			args := []string{"test", "--policy", filepath.Join(dir, "policy.hcl")}
			for _, a := range tt.args {
				args = append(args, strings.ReplaceAll(a, "{dir}", dir))
			}
			stdout, stderr, code := runCLI(t, args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d; stdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			rest := stdout
			for _, w := range tt.want {
				w = strings.ReplaceAll(w, "{dir}", dir)
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("stdout lacks (in order) %q:\n%s", w, stdout)
				}
				rest = rest[i+len(w):]
			}
			if err := strings.ReplaceAll(tt.err, "{dir}", dir); !strings.Contains(stderr, err) {
				t.Errorf("stderr lacks %q:\n%s", err, stderr)
			}
		})
	}
}

// TestTestCommandUnderRoot: `imdsmend test DIR` reads DIR inside --root, as it reads
// --policy there.
func TestTestCommandUnderRoot(t *testing.T) {
	root := t.TempDir()
	tree.Write(t, root, map[string]string{
		"etc/imdsmend/policy.hcl": cliPolicy,
		"srv/tests/a_test.hcl":    "test \"down\" {\n  facts  = { imds = { class = \"timeout\" } }\n  expect = [\"imds_down\"]\n}\n",
	})
	stdout, stderr, code := runCLI(t, "test", "--root", root, "--policy", "/etc/imdsmend/policy.hcl", "/srv/tests")
	if code != 0 || !strings.Contains(stdout, "--- PASS: down ("+filepath.Join(root, "srv/tests/a_test.hcl")+":1)") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant the test in the root to pass", code, stdout, stderr)
	}
}
