package imds

import (
	"context"
	"testing"

	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
)

// BenchmarkIMDSProbe is one healthy probe cycle (token PUT + GET over one connection)
// against the simulator on loopback.
func BenchmarkIMDSProbe(b *testing.B) {
	srv, endpoint := startIMDSSim(b, sim.Config{Fault: sim.FaultOK})
	cfg := Config{Endpoint: endpoint}
	ctx := context.Background()
	for b.Loop() {
		if v4, _, err := Gather(ctx, cfg, false); err != nil || v4.Class != types.ClassOK {
			b.Fatalf("probe: %v %+v", err, v4)
		}
	}
	st := srv.Stats()
	b.ReportMetric(float64(st.Requests)/float64(b.N), "requests/op")
	b.ReportMetric(float64(st.Connections)/float64(b.N), "conns/op")
}
