package facts

import (
	"context"
	"testing"

	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
)

// BenchmarkIMDSProbe is one healthy probe cycle (token PUT + GET over one connection)
// against the simulator on loopback.
func BenchmarkIMDSProbe(b *testing.B) {
	srv, endpoint := startIMDSSim(b, sim.Config{Fault: sim.FaultOK})
	cfg := Config{IMDSEndpoint: endpoint}
	ctx := context.Background()
	for b.Loop() {
		var f Facts
		if err := (IMDSProbe{}).Gather(ctx, cfg, &f); err != nil || f.IMDS.Class != ClassOK {
			b.Fatalf("probe: %v %+v", err, f.IMDS)
		}
	}
	st := srv.Stats()
	b.ReportMetric(float64(st.Requests)/float64(b.N), "requests/op")
	b.ReportMetric(float64(st.Connections)/float64(b.N), "conns/op")
}
