package fleet

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"

	"github.com/imdsmend/imdsmend/remediate"
	"github.com/imdsmend/imdsmend/tests/ec2sim/ec2"
)

// simEnv serves sim on loopback and points the SDK at it with static credentials, IMDS
// out of reach.
func simEnv(tb testing.TB, sim *ec2.Server) {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go func() { _ = sim.Serve(l) }()
	tb.Cleanup(func() { _ = sim.Close() })
	url := "http://" + l.Addr().String()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_EC2": url, "AWS_ENDPOINT_URL_STS": url, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
		"AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true", "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:1",
		"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_PROFILE": "", "AWS_SESSION_TOKEN": "",
	} {
		tb.Setenv(k, v)
	}
}

// BenchmarkAudit10k: fleet audit of 10,000 simulated instances in 4 regions at the
// simulator's default request rates (docs/bench.md).
func BenchmarkAudit10k(b *testing.B) {
	sim := ec2.New(ec2.Config{Throttle: ec2.DefaultRates, ApplyAfter: ec2.DefaultApplyAfter})
	if err := sim.Generate(ec2.FleetSpec{Instances: 10000, Regions: 4, Accounts: 1, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	simEnv(b, sim)
	cloud, err := NewAWS(context.Background(), "")
	if err != nil {
		b.Fatal(err)
	}
	p := defaultPolicy(b, "")
	var rep *Report
	for b.Loop() {
		sim.SetConfig(sim.Config()) // full buckets for each run
		sim.ResetStats()
		f := New(Config{Cloud: cloud, Policy: p, Regions: []string{"all"}, Ledger: remediate.NewLedger(filepath.Join(b.TempDir(), "l"))})
		rep = f.Audit(context.Background())
	}
	st := sim.Stats()
	if rep.Totals.Instances != 10000 || rep.Totals.FailedScopes != 0 || st.Throttled != 0 {
		b.Fatalf("%d instances, %d failed scopes, %d throttled; want 10000, 0, 0", rep.Totals.Instances, rep.Totals.FailedScopes, st.Throttled)
	}
	b.ReportMetric(float64(rep.Totals.Pages), "pages")
	b.ReportMetric(float64(st.ByAction["DescribeInstances"]), "describe-calls")
}

// BenchmarkApply1000: fleet apply of 1,000 changes (hop limit 1 on EKS nodes) in one
// account and region at the simulator's default request rates: every change applied, and
// the simulator throttles under 1 % of the requests (docs/bench.md).
func BenchmarkApply1000(b *testing.B) {
	p := defaultPolicy(b, `settings {
  fleet {
    max_changes = 1000
  }
}`)
	for b.Loop() {
		b.StopTimer()
		sim := ec2.New(ec2.Config{Throttle: ec2.DefaultRates, ApplyAfter: ec2.DefaultApplyAfter})
		for i := range 1000 {
			o := ec2.DefaultOptions()
			o.HopLimit = 1
			sim.AddInstance(ec2.Instance{ID: fmt.Sprintf("i-%017x", i+1), Tags: []ec2.Tag{{Key: "eks:cluster-name", Value: "bench"}}, Options: o})
		}
		simEnv(b, sim)
		cloud, err := NewAWS(context.Background(), "")
		if err != nil {
			b.Fatal(err)
		}
		f := New(Config{Cloud: cloud, Policy: p, Regions: []string{ec2.DefaultRegion}, Ledger: remediate.NewLedger(filepath.Join(b.TempDir(), "l"))})
		b.StartTimer()
		rep := f.Apply(context.Background())
		b.StopTimer()
		st := sim.Stats()
		rate := float64(st.Throttled) / float64(st.Requests)
		b.ReportMetric(float64(rep.Totals.Changes["applied"]), "applied")
		b.ReportMetric(float64(rep.Totals.Changes["failed"]), "failed")
		b.ReportMetric(float64(st.Requests), "requests")
		b.ReportMetric(100*rate, "throttled-%")
		if rep.Totals.Changes["applied"] != 1000 || rep.Totals.Changes["failed"] != 0 || rate >= 0.01 {
			b.Errorf("changes %v, %d of %d requests throttled; want 1000 applied, none failed, under 1 %%", rep.Totals.Changes, st.Throttled, st.Requests)
		}
		b.StartTimer()
	}
}
