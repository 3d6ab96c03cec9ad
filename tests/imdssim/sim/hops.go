package sim

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// connKey finds the request's TCP connection in its context.
type connKey struct{}

// withConn is http.Server.ConnContext: it hands each request its connection, so a token
// answer can set the connection's TTL.
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// ackWait bounds how long a token answer keeps the hop limit on its connection waiting
// for the client's acknowledgement; an answer the client never acknowledges (it was
// dropped on the way) leaves it on, so retransmissions die on the way too.
const ackWait = 10 * time.Second

// answerWithHopLimit sends the token with the IP TTL (IPv6 hop limit) set to hopLimit,
// as IMDS does for its PUT responses: a client more routers away than the limit never
// gets it. The connection's own TTL comes back once the client has acknowledged the
// answer, so later GETs on it are not limited.
func (s *Server) answerWithHopLimit(w http.ResponseWriter, r *http.Request, hopLimit int, tok string) {
	conn, _ := r.Context().Value(connKey{}).(net.Conn)
	restore, err := setHops(conn, hopLimit)
	if err != nil {
		plain(w, http.StatusInternalServerError, "")
		return
	}
	plain(w, http.StatusOK, tok)
	if err := http.NewResponseController(w).Flush(); err != nil {
		return
	}
	if waitAcked(r.Context(), conn, s.servers.Closing()) {
		restore()
	}
}

// setHops sets the TTL (IPv4) or unicast hop limit (IPv6) of conn's packets and returns
// a function that puts the old value back.
func setHops(conn net.Conn, hops int) (func(), error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("hop limit: %T has no socket", conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("hop limit: %w", err)
	}
	var level, opt, old int
	var sockErr error
	err = raw.Control(func(fd uintptr) {
		level, opt = unix.IPPROTO_IP, unix.IP_TTL
		if domain, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN); err == nil && domain == unix.AF_INET6 {
			level, opt = unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS
			if tcp, ok := conn.LocalAddr().(*net.TCPAddr); ok && tcp.IP.To4() != nil {
				// An IPv4 client on a dual-stack socket: its packets take IP_TTL.
				level, opt = unix.IPPROTO_IP, unix.IP_TTL
			}
		}
		if old, sockErr = unix.GetsockoptInt(int(fd), level, opt); sockErr == nil {
			sockErr = unix.SetsockoptInt(int(fd), level, opt, hops)
		}
	})
	if err == nil {
		err = sockErr
	}
	if err != nil {
		return nil, fmt.Errorf("hop limit: set %d: %w", hops, err)
	}
	return func() {
		_ = raw.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), level, opt, old) })
	}, nil
}

// waitAcked waits until the client has acknowledged everything sent on conn (the
// socket's send queue is empty), up to ackWait; it says whether it was.
func waitAcked(ctx context.Context, conn net.Conn, closing <-chan struct{}) bool {
	raw, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		return false
	}
	unacked := func() int {
		n := -1
		_ = raw.Control(func(fd uintptr) {
			if v, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ); err == nil {
				n = v
			}
		})
		return n
	}
	deadline := time.NewTimer(ackWait)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		switch n := unacked(); {
		case n == 0:
			return true
		case n < 0:
			return false
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return false
		case <-closing:
			return false
		}
	}
}
