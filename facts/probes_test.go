package facts

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imdsmend/imdsmend/facts/imds"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
	"github.com/zclconf/go-cty/cty"
)

// Gather bounds a probe by the run's deadline, not only its own, with room left to report.
func TestIMDSProbeHonoursRunDeadline(t *testing.T) {
	srv := sim.New(sim.Config{Fault: sim.FaultHang})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	// 2 s leaves a 500 ms reserve: room enough on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	timeouts := imds.Timeouts{Connect: time.Second, Header: 10 * time.Second, Total: 10 * time.Second}
	cfg := Config{IMDS: imds.Config{Endpoint: "http://" + l.Addr().String(), Timeouts: timeouts}, Timeout: 10 * time.Second}
	f := Gather(ctx, cfg, []Probe{imdsProbe{}})
	if !f.Probes["imds"].OK {
		t.Fatalf("probe failed: %s", f.Probes["imds"].Error)
	}
	if ctx.Err() != nil {
		t.Errorf("probe returned after the run's deadline; it must leave room to report")
	}
	if f.IMDS.Class != types.ClassTimeout {
		t.Errorf("class = %s (%s), want timeout", f.IMDS.Class, f.IMDS.Error)
	}
}

func TestProxyProbeFillsFacts(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/environment"), []byte("http_proxy=http://u:pw@p:3128\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := Gather(context.Background(), Config{Paths: paths.New(root)}, []Probe{proxyProbe{}})
	if !f.Probes["proxy"].OK || f.Proxy == nil || len(f.Proxy.Sources) != 1 {
		t.Fatalf("probe result %+v, proxy %+v", f.Probes["proxy"], f.Proxy)
	}
	v, err := Value(f)
	if err != nil {
		t.Fatal(err)
	}
	s := v.GetAttr("proxy").GetAttr("sources").Index(cty.NumberIntVal(0))
	if !s.GetAttr("leaks").True() || s.GetAttr("proxy").AsString() != "http://REDACTED@p:3128" {
		t.Errorf("facts.proxy.sources[0] = %#v", s)
	}
}
