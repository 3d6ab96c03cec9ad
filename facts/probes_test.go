package facts

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
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

// The ec2 probe calls nothing without settings.allow.ec2_api: an EC2 endpoint that fails
// the test on any request stays untouched, and facts.ec2 stays null. The identity probe's
// answer is completed with IMDS's instance ID once both are in.
func TestEC2ProbeOnlyWhenAllowed(t *testing.T) {
	srv := httptestServer(t)
	t.Setenv("AWS_ENDPOINT_URL_EC2", srv)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/dnf/vars"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/dnf/vars/awsregion"), []byte("eu-west-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Paths: paths.New(root), Timeout: 5 * time.Second}
	f := Gather(context.Background(), cfg, []Probe{ec2Probe{}, identityProbe{}, fixedIMDS{id: "i-0123456789abcdef0"}})
	if f.EC2 != nil || f.Probes["ec2"].Error != errEC2NotAllowed.Error() {
		t.Errorf("ec2 probe without permission: %+v, %+v", f.EC2, f.Probes["ec2"])
	}
	if f.Identity == nil || f.Identity.InstanceID != "i-0123456789abcdef0" || f.Identity.InstanceIDSource != "imds" || f.Identity.Region != "eu-west-1" {
		t.Errorf("identity = %+v", f.Identity)
	}
}

// fixedIMDS is an IMDS probe that found an instance ID.
type fixedIMDS struct{ id string }

func (fixedIMDS) Name() string { return "imds" }

func (p fixedIMDS) Gather(_ context.Context, _ Config, f *Facts) error {
	f.IMDS = &types.IMDS{Reachable: true, InstanceID: p.id}
	return nil
}

// httptestServer is an endpoint that fails the test on any request.
func httptestServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("EC2 API called without permission: %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
