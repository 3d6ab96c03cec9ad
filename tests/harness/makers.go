package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
)

// A Maker creates one known blocker inside a namespace, the way it happens on real
// instances, and checks that it is gone again (after `imdsmend apply`, say). The e2e tests
// and `make demo` share the makers. To add a blocker, add a Maker below and a line to
// Makers.
type Maker struct {
	// Name is short and stable, for test names and logs.
	Name string
	// What says in words what Make does, for the demo's narration.
	What string
	// Make creates the blocker.
	Make func(ctx context.Context, ns *Namespace) error
	// Gone returns nil when no trace of the blocker remains, else what is left.
	Gone func(ctx context.Context, ns *Namespace) error
}

// Makers lists every maker that works in a namespace as NewNamespace makes it, for tests
// that run over all of them. The route makers need RouteViaENI first.
func Makers() []Maker {
	return []Maker{RejectIMDS, DropIMDS, UnrouteIMDS, OwnerRejectIMDS, ChainDropIMDS, ResetIMDS, DNATIMDS, IPv6RejectIMDS, LegacyRejectIMDS, NftRejectIMDS}
}

// RejectIMDS inserts the AWS troubleshooting article's REJECT without its owner match, so
// it refuses every process, root included, with "connection refused" (class
// connection_refused). (-p tcp keeps the ICMP error it sends from matching the rule itself
// inside a namespace, where 169.254.169.254 is also the source address.)
var RejectIMDS = iptablesMaker("reject", "iptables", "filter",
	[]string{"OUTPUT", "-p", "tcp", "-d", IMDSAddr + "/32", "-j", "REJECT", "--reject-with", "icmp-port-unreachable"})

// DropIMDS inserts an iptables DROP toward 169.254.169.254, so clients time out (class
// timeout).
var DropIMDS = iptablesMaker("drop", "iptables", "filter", []string{"OUTPUT", "-p", "tcp", "-d", IMDSAddr + "/32", "-j", "DROP"})

// UnrouteIMDS takes 169.254.169.254 off the namespace's loopback, leaving no route to it
// (class no_route).
var UnrouteIMDS = Maker{
	Name: "unroute",
	What: "ip addr del " + IMDSAddr + "/32 dev lo",
	Make: func(ctx context.Context, ns *Namespace) error {
		return ns.tool(ctx, "ip", "addr", "del", IMDSAddr+"/32", "dev", "lo")
	},
	Gone: routeWorks,
}

// Sim is an imdssim serving 169.254.169.254:80 and [fd00:ec2::254]:80 inside a namespace.
type Sim struct {
	Proc *Proc
	// Admin reads its counters and changes its fault while it runs.
	Admin *sim.AdminClient
	// Socket is the admin socket's path, for curl --unix-socket.
	Socket string
}

// StartSim starts the simulator (binary bin) in ns with the given fault and extra imdssim
// flags, and returns once it serves. It stops when the namespace closes.
func StartSim(ctx context.Context, ns *Namespace, bin string, fault sim.Fault, flags ...string) (*Sim, error) {
	dir, err := os.MkdirTemp("", "imdssim-")
	if err != nil {
		return nil, err
	}
	ns.OnClose(func() { _ = os.RemoveAll(dir) })
	s := &Sim{Socket: filepath.Join(dir, "admin.sock")}
	args := append([]string{
		"--listen", IMDSAddr + ":80", "--listen", "[" + IMDSv6Addr + "]:80",
		"--admin", "unix:" + s.Socket, "--fault", string(fault),
	}, flags...)
	if s.Proc, err = ns.Start(bin, args...); err != nil {
		return nil, err
	}
	s.Admin = sim.NewAdminClient(s.Socket)
	// imdssim binds its IMDS listeners before the admin socket, so an answer on the admin
	// socket means IMDS is served, without a probe connection the counters would see.
	err = waitReady(ctx, s.Proc, func(ctx context.Context) error {
		_, err := s.Admin.Stats(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("imdssim in %s: %w", ns.Name, err)
	}
	return s, nil
}

// StartAEMM starts the upstream amazon-ec2-metadata-mock (binary bin) on
// 169.254.169.254:80 in ns, IMDSv2 only, and returns once it serves.
func StartAEMM(ctx context.Context, ns *Namespace, bin string) (*Proc, error) {
	p, err := ns.Start(bin, "--hostname", IMDSAddr, "--port", "80", "--imdsv2")
	if err != nil {
		return nil, err
	}
	err = waitReady(ctx, p, func(ctx context.Context) error { return ns.WaitTCP(ctx, IMDSAddr+":80") })
	if err != nil {
		return nil, fmt.Errorf("ec2-metadata-mock in %s: %w", ns.Name, err)
	}
	return p, nil
}

// waitReady polls ready until it succeeds, p exits (which fails at once, with p's output)
// or ctx ends.
func waitReady(ctx context.Context, p *Proc, ready func(context.Context) error) error {
	backoff := 2 * time.Millisecond
	for {
		attempt, cancel := context.WithTimeout(ctx, time.Second)
		err := ready(attempt)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited before serving: %s", strings.TrimSpace(p.Output()))
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 100*time.Millisecond)
	}
}
