package e2e

import (
	"context"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/imdsmend/imdsmend/tests/harness"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
)

// TestHopLayout: the one-hop layout is what the hop-limit, front-end and boot tests rely
// on. IMDS answers the Host over its veth through the default route, and a container's
// packets cross exactly one forwarding hop: a SYN sent with TTL 1 dies at the Host, TTL 2
// arrives. imdsmend in the Host finds IMDS healthy.
func TestHopLayout(t *testing.T) {
	ctx := testContext(t)
	hop := newHop(t, 1)
	if _, err := harness.StartSim(ctx, hop.IMDS, bins.Imdssim, sim.FaultOK); err != nil {
		t.Fatal(err)
	}
	imds := net.JoinHostPort(harness.IMDSAddr, "80")
	for _, tc := range []struct {
		name    string
		ns      *harness.Namespace
		ttl     int
		reaches bool
	}{
		{"host, TTL 1", hop.Host, 1, true},
		{"container, TTL 1", hop.Containers[0], 1, false},
		{"container, TTL 2", hop.Containers[0], 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := dialTTL(ctx, tc.ns, imds, tc.ttl)
			if tc.reaches && err != nil {
				t.Errorf("dial %s with TTL %d: %v, want it to connect", imds, tc.ttl, err)
			}
			if !tc.reaches && err == nil {
				t.Errorf("dial %s with TTL %d connected, want the SYN to die one hop away", imds, tc.ttl)
			}
		})
	}

	rep, res := newRun(t, hop.Host).report(ctx, "check")
	if res.ExitCode != 0 || len(rep.Findings) != 0 {
		t.Errorf("check in the Host: exit %d, findings %v, want 0 and none\nstderr:\n%s", res.ExitCode, findingRules(rep), res.Stderr)
	}
}

// dialTTL connects to addr from inside ns with the IP TTL set before the SYN leaves.
// A SYN lost to TTL expiry is only a soft error for TCP, so the bound is the dial timeout.
func dialTTL(ctx context.Context, ns *harness.Namespace, addr string, ttl int) error {
	return ns.Do(func() error {
		d := net.Dialer{Timeout: time.Second, Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_TTL, ttl)
			}); err != nil {
				return err
			}
			if serr != nil {
				return &net.OpError{Op: "setsockopt IP_TTL=" + strconv.Itoa(ttl), Err: serr}
			}
			return nil
		}}
		conn, err := d.DialContext(ctx, "tcp4", addr)
		if err == nil {
			conn.Close()
		}
		return err
	})
}
