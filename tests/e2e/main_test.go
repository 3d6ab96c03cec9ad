// Package e2e runs the built imdsmend binary inside network namespaces against the IMDS
// simulator, the upstream ec2-metadata-mock and real iptables. It needs root; `sudo make
// e2e` runs it. Nothing here talks to 169.254.169.254 outside a namespace it created.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/tests/harness"
)

// bins are the binaries under test, built once in TestMain.
var bins harness.Binaries

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: these tests create network namespaces and iptables rules and must run as root: sudo make e2e")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "imdsmend-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.Exit(1)
	}
	bins, err = harness.Build(dir)
	if err != nil {
		os.RemoveAll(dir)
		fmt.Fprintf(os.Stderr, "e2e: build the binaries under test: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// newNamespace creates a namespace holding 169.254.169.254 for t; it and everything
// started in it go away when t ends, passed or failed.
func newNamespace(t testing.TB) *harness.Namespace {
	t.Helper()
	ns, err := harness.NewNamespace()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	return ns
}

// newHop builds the one-hop layout (harness.Hop) with the given number of containers for
// t; it goes away when t ends.
func newHop(t testing.TB, containers int) *harness.Hop {
	t.Helper()
	h, err := harness.NewHop(containers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// testContext bounds a test's setup and commands.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// run is one imdsmend invocation inside a namespace, with a private state directory and
// the test beds' policy (harness.WritePolicy), so nothing on the host (its /etc/imdsmend,
// its ledger, its proxy settings) takes part.
type run struct {
	t        testing.TB
	ns       *harness.Namespace
	stateDir string
	policy   string
}

func newRun(t testing.TB, ns *harness.Namespace) *run {
	t.Helper()
	dir := t.TempDir()
	policy, err := harness.WritePolicy(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &run{t: t, ns: ns, stateDir: filepath.Join(dir, "state"), policy: policy}
}

// dropIn adds a policy drop-in beside the policy file.
func (r *run) dropIn(name, hcl string) {
	r.t.Helper()
	dir := filepath.Join(filepath.Dir(r.policy), "policy.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(hcl), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// args is the command line of `imdsmend COMMAND ARGS...` with this run's policy and state.
func (r *run) args(command string, args ...string) []string {
	return append([]string{command, "--policy", r.policy, "--state-dir", r.stateDir}, args...)
}

// exec runs `imdsmend COMMAND ARGS...` in the namespace.
func (r *run) exec(ctx context.Context, command string, args ...string) harness.Result {
	r.t.Helper()
	res, err := r.ns.Exec(ctx, nil, bins.Imdsmend, r.args(command, args...)...)
	if err != nil {
		r.t.Fatal(err)
	}
	return res
}

// report runs COMMAND with --format json and decodes the report.
func (r *run) report(ctx context.Context, command string, args ...string) (*report.Report, harness.Result) {
	r.t.Helper()
	res := r.exec(ctx, command, append([]string{"--format", "json"}, args...)...)
	return decodeReport(r.t, command, res), res
}

// decodeReport decodes the JSON report `imdsmend COMMAND --format json` printed.
func decodeReport(t testing.TB, command string, res harness.Result) *report.Report {
	t.Helper()
	var rep report.Report
	if err := json.Unmarshal([]byte(res.Stdout), &rep); err != nil {
		t.Fatalf("imdsmend %s: exit %d, output is no JSON report: %v\nstdout:\n%s\nstderr:\n%s", command, res.ExitCode, err, res.Stdout, res.Stderr)
	}
	if rep.Schema != report.Schema || rep.Command != command {
		t.Errorf("report schema %q command %q, want %q %q", rep.Schema, rep.Command, report.Schema, command)
	}
	return &rep
}

// findingRules lists the rules of the report's open findings.
func findingRules(rep *report.Report) []string {
	rules := []string{}
	for _, f := range rep.Findings {
		rules = append(rules, f.Rule)
	}
	return rules
}
