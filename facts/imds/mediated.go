package imds

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"github.com/imdsmend/imdsmend/facts/route"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// mediation is what follows a direct probe (mediationFor).
type mediation int

const (
	// mediationNone: the direct probe is the answer.
	mediationNone mediation = iota
	// mediationMarked: probe again along systemd-imdsd's own path, with its fwmark.
	mediationMarked
	// mediationUnverified: systemd-imdsd mediates, but this process may not mark its
	// sockets, so the daemon's path stays untested.
	mediationUnverified
)

// mediationFor decides from the direct probe's result whether IMDS is mediated by
// systemd-imdsd: in its "locked" mode (the default) a prohibit route stops direct access on
// purpose and the daemon's own requests, marked with route.SystemdIMDSMark, are routed by a
// policy rule. Only a no_route failure whose route meets a prohibit route while that fwmark
// rule exists is mediated (layout says both; it is asked only then). canMark is nil when
// this process may set SO_MARK (CAP_NET_ADMIN).
func mediationFor(direct *types.IMDS, layout func() (prohibited, ruled bool, err error), canMark func() error) (mediation, error) {
	if direct.Reachable || direct.Class != types.ClassNoRoute {
		return mediationNone, nil
	}
	prohibited, ruled, err := layout()
	switch {
	case err != nil:
		return mediationNone, err
	case !prohibited || !ruled:
		return mediationNone, nil
	case canMark() != nil:
		return mediationUnverified, nil
	}
	return mediationMarked, nil
}

// probeMediated probes directly and, when systemd-imdsd mediates IMDS, again along the
// daemon's path; the IMDS fact then says so (mediated_by, marked).
func (c *imdsClient) probeMediated(ctx context.Context) *types.IMDS {
	direct := c.probe(ctx)
	addr, ok := c.hostAddr()
	if !ok {
		return direct
	}
	m, err := mediationFor(direct, func() (bool, bool, error) {
		ruled, err := route.SystemdIMDSRuled(addrFamily(addr))
		return routeProhibited(addr), ruled, err
	}, func() error { return canMark(addr, route.SystemdIMDSMark) })
	switch {
	case err != nil:
		// The direct verdict stands; why we could not look further goes with it.
		direct.Error += "; " + err.Error()
	case m == mediationMarked:
		return c.probeMarked(ctx, direct)
	case m == mediationUnverified:
		direct.MediatedBy = route.MediatorSystemdIMDS
		direct.Error += fmt.Sprintf("; direct access is prohibited on purpose by systemd-imdsd, and this process may not take its path (fwmark %#x needs CAP_NET_ADMIN)", route.SystemdIMDSMark)
	}
	return direct
}

// probeMarked probes along systemd-imdsd's path: every socket carries its fwmark, so its
// policy rule routes the requests past the prohibit route. The result is the marked
// probe's, with the direct probe's time and requests added.
func (c *imdsClient) probeMarked(ctx context.Context, direct *types.IMDS) *types.IMDS {
	start := time.Now()
	m, err := sharedClient(c.base, route.SystemdIMDSMark, c.t, c.budget)
	if err != nil {
		direct.Error += "; " + err.Error()
		return direct
	}
	res := m.probe(ctx)
	res.MediatedBy, res.Marked = route.MediatorSystemdIMDS, true
	res.Attempts += direct.Attempts
	res.LatencyMS = direct.LatencyMS + float64(time.Since(start).Microseconds())/1000
	if res.Error != "" {
		res.Error = fmt.Sprintf("along systemd-imdsd's path (fwmark %#x): %s", route.SystemdIMDSMark, res.Error)
	}
	return res
}

// hostAddr is the endpoint's IP address; false for a host name, which no route lookup
// judges before it resolves.
func (c *imdsClient) hostAddr() (netip.Addr, bool) {
	u, err := url.Parse(c.base)
	if err != nil {
		return netip.Addr{}, false
	}
	addr, err := netip.ParseAddr(u.Hostname())
	return addr.Unmap(), err == nil
}

func addrFamily(addr netip.Addr) int {
	if addr.Is6() {
		return netlink.FAMILY_V6
	}
	return netlink.FAMILY_V4
}

// routeProhibited reports whether a prohibit route refuses unmarked packets to addr (the
// lookup fails with EACCES, as connect does).
func routeProhibited(addr netip.Addr) bool {
	_, err := netlink.RouteGet(net.IP(addr.AsSlice()))
	return errors.Is(err, unix.EACCES)
}

// canMark is nil when this process may mark a socket to addr's family with mark.
func canMark(addr netip.Addr, mark int) error {
	domain := unix.AF_INET
	if addr.Is6() {
		domain = unix.AF_INET6
	}
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open a socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, mark); err != nil {
		return fmt.Errorf("set SO_MARK %#x: %w", mark, err)
	}
	return nil
}

// socketControl prepares each socket before it connects: SO_MARK when mark is not 0, and
// a zero linger, so closing sends a reset and leaves no TIME_WAIT socket to IMDS behind.
// Those would be read by the next run's caller sampling as a process churning connections
// (one per run adds up on a timer or in watch), and the reset is one packet against the
// link-local budget where an orderly close takes several. imdsmend closes a connection
// only after reading its last answer in full, so the reset drops nothing.
func socketControl(mark int) func(network, address string, rc syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			if mark != 0 {
				if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, mark); err != nil {
					serr = fmt.Errorf("set SO_MARK %#x: %w", mark, err)
					return
				}
			}
			if err := unix.SetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
				serr = fmt.Errorf("set SO_LINGER 0: %w", err)
			}
		}); err != nil {
			return err
		}
		return serr
	}
}
