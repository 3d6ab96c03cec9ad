package rules

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/hashicorp/hcl/v2"
	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/internal/types"
)

// seedPolicies adds the default policy and both corpora to a fuzz target's seeds.
func seedPolicies(f *testing.F, add func(data []byte)) {
	files, _ := filepath.Glob("testdata/*/*.hcl")
	for _, file := range append(files, "../policy.hcl") {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		add(data)
	}
}

// FuzzLoad: any bytes, as the main policy and as a drop-in, give diagnostics or a valid
// policy — never a panic — and the diagnostics print like `imdsmend validate` prints them.
func FuzzLoad(f *testing.F) {
	seedPolicies(f, func(data []byte) { f.Add(data, []byte(`rule "a" { enabled = false }`)) })
	f.Fuzz(func(t *testing.T, main, dropIn []byte) {
		p, diags := Parse([]Source{{"policy.hcl", main}, {"policy.d/10.hcl", dropIn}}, kinds)
		w := hcl.NewDiagnosticTextWriter(io.Discard, p.Files, 100, false)
		if err := w.WriteDiagnostics(diags); err != nil {
			t.Fatal(err)
		}
		for _, d := range diags {
			_ = FormatDiagnostic(d)
		}
		if diags.HasErrors() {
			return
		}
		for _, r := range p.Rules {
			if r.When == nil || r.Summary == nil {
				t.Fatalf("valid policy has rule %q without when or summary", r.Name)
			}
			switch r.Severity {
			case types.SeverityInfo, types.SeverityWarning, types.SeverityCritical:
			default:
				t.Fatalf("valid policy has rule %q with severity %q", r.Name, r.Severity)
			}
		}
	})
}

// FuzzEvaluate: a policy that loads evaluates over any facts (given as the JSON of
// `imdsmend facts --format json`) without a panic, and decides each enabled rule once.
func FuzzEvaluate(f *testing.F) {
	fixture := []byte(`{"imds": {"class": "timeout", "endpoint": "http://169.254.169.254", "attempts": 3},
  "firewall": {"rules": [{"id": "a", "blocks": true, "scope": "everyone", "chain": "OUTPUT"}]},
  "route": {"type": "blackhole"}, "proxy": {"sources": [{"kind": "process", "bypassed": false}]},
  "probes": {"imds": {"ok": false, "error": "timeout"}}}`)
	seedPolicies(f, func(data []byte) {
		f.Add(data, fixture)
		f.Add(data, []byte(`{}`))
	})
	f.Fuzz(func(t *testing.T, policy, factsJSON []byte) {
		p, diags := Parse([]Source{{"policy.hcl", policy}}, kinds)
		if diags.HasErrors() {
			return
		}
		var fs *facts.Facts
		if json.Unmarshal(factsJSON, &fs) != nil {
			fs = nil
		}
		v, err := facts.Value(fs)
		if err != nil {
			t.Fatal(err)
		}
		res := p.Evaluate(v, nil)
		decided := map[string]int{}
		for _, fd := range res.Findings {
			decided[fd.Rule]++
		}
		for _, u := range res.Unknown {
			decided[u.Rule]++
		}
		for _, r := range p.Rules {
			if r.Enabled && decided[r.Name] > 1 {
				t.Fatalf("rule %q decided %d times", r.Name, decided[r.Name])
			}
		}
	})
}

// FuzzLoadTests: any bytes as a *_test.hcl file, and as the facts file it may load, give
// diagnostics or test cases that run — never a panic.
func FuzzLoadTests(f *testing.F) {
	p := mustParse(f, "policy.hcl", testedPolicy)
	files, _ := filepath.Glob("../policytests/*_test.hcl")
	capture, err := os.ReadFile("../policytests/testdata/firewall_reject.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, capture)
	}
	f.Add([]byte(`test "t" {
  facts_file = "capture.json"
  facts      = { imds = { class = "timeout" } }
  expect     = ["imds_down"]
}`), capture)
	f.Fuzz(func(t *testing.T, tests, capture []byte) {
		fsys := fstest.MapFS{"t_test.hcl": {Data: tests}, "capture.json": {Data: capture}}
		cases, _, diags := LoadTests(fsys, ".", p)
		if diags.HasErrors() {
			return
		}
		for _, tc := range cases {
			p.RunTest(tc)
		}
	})
}
