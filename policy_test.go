package imdsmend

import (
	"encoding/json"
	"io/fs"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/remediate"
	"github.com/imdsmend/imdsmend/rules"
)

func loadDefault(tb testing.TB) *rules.Policy {
	tb.Helper()
	p, diags := rules.Parse([]rules.Source{{Name: rules.BuiltinName, Data: DefaultPolicy}}, remediate.Builtin(remediate.Deps{}))
	if len(diags) > 0 {
		tb.Fatalf("the default policy has diagnostics:\n%s", diags.Error())
	}
	return p
}

// TestDefaultPolicySettings: local fixes are allowed, EC2 API calls are not.
func TestDefaultPolicySettings(t *testing.T) {
	p := loadDefault(t)
	want := rules.Allow{Firewall: true, Files: true}
	if diff := cmp.Diff(want, p.Settings.Allow); diff != "" {
		t.Errorf("allow (-want +got):\n%s", diff)
	}
	if p.Settings.Mode != rules.ModeEnforce {
		t.Errorf("mode %q, want %q", p.Settings.Mode, rules.ModeEnforce)
	}
}

// TestDefaultPolicyTests runs the embedded policy tests, as `imdsmend test` does, and checks
// that each rule of the default policy fires in at least one of them.
func TestDefaultPolicyTests(t *testing.T) {
	p := loadDefault(t)
	cases, _, diags := rules.LoadTests(PolicyTests(), "policytests", p)
	if len(diags) > 0 {
		t.Fatalf("the policy tests do not load:\n%s", diags.Error())
	}
	fired := map[string]bool{}
	for _, tc := range cases {
		r := p.RunTest(tc)
		if !r.Passed() {
			t.Errorf("%s (%s): %v", tc.Name, tc.DeclRange, r.Failures)
		}
		for _, name := range tc.Expect {
			fired[name] = true
		}
	}
	for _, r := range p.Rules {
		if !fired[r.Name] {
			t.Errorf("no test in policytests/ expects rule %q to fire", r.Name)
		}
	}
}

// BenchmarkLoadDefaultPolicy parses the default policy and checks every expression against
// the facts schema, as every command does before it probes.
func BenchmarkLoadDefaultPolicy(b *testing.B) {
	kinds := remediate.Builtin(remediate.Deps{})
	sources := []rules.Source{{Name: rules.BuiltinName, Data: DefaultPolicy}}
	defer reportCPU(b)()
	for b.Loop() {
		if _, diags := rules.Parse(sources, kinds); diags.HasErrors() {
			b.Fatal(diags)
		}
	}
}

// BenchmarkEvaluateDefaultPolicy evaluates the default policy on each captured facts file:
// a healthy instance, one whose IMDS a firewall REJECT blocks (rules fire, a fix is
// requested), and one with an owner-scoped restriction.
func BenchmarkEvaluateDefaultPolicy(b *testing.B) {
	p := loadDefault(b)
	for _, name := range []string{"healthy", "firewall_reject", "owner_restricted"} {
		b.Run(name, func(b *testing.B) {
			data, err := fs.ReadFile(PolicyTests(), "testdata/"+name+".json")
			if err != nil {
				b.Fatal(err)
			}
			var f facts.Facts
			if err := json.Unmarshal(data, &f); err != nil {
				b.Fatal(err)
			}
			v, err := facts.Value(&f)
			if err != nil {
				b.Fatal(err)
			}
			defer reportCPU(b)()
			for b.Loop() {
				p.Evaluate(v, nil)
			}
		})
	}
}

// reportCPU adds the process's CPU time per operation (GC included) to a benchmark's
// results. On a shared machine wall time also counts waiting for a CPU; this does not.
func reportCPU(b *testing.B) func() {
	start := cpuTime(b)
	return func() {
		b.ReportMetric(float64((cpuTime(b)-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
