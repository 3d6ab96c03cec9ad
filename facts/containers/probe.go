package containers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/imdsmend/imdsmend/facts/imds"
	"github.com/imdsmend/imdsmend/internal/paths"
)

// probe enters c's network namespace and sends the tokenless GET and the token PUT at the
// same time, each bounded as the host's probe is, then classifies what came back.
func probe(ctx context.Context, cfg imds.Config, c *Container) {
	ns, err := openNetNS(c.PID, c.NetNS)
	if err != nil {
		c.Fingerprint, c.Error = FingerprintNotProbed, "not probed: "+err.Error()
		return
	}
	defer ns.Close()
	dial := dialIn(ns)
	var get, put imds.Reply
	var getErr, putErr error
	var wg sync.WaitGroup
	wg.Go(func() { get, getErr = imds.Send(ctx, cfg, dial, imds.TokenlessGET) })
	put, putErr = imds.Send(ctx, cfg, dial, imds.TokenPUT)
	wg.Wait()
	if err := errors.Join(getErr, putErr); err != nil {
		c.Fingerprint, c.Error = FingerprintNotProbed, "not probed: "+err.Error()
		return
	}
	c.GetStatus, c.GetLatencyMS = get.Status, get.LatencyMS
	c.PutStatus, c.PutTimedOut, c.PutLatencyMS = put.Status, put.TimedOut(), put.LatencyMS
	c.Fingerprint = Classify(get, put)
	var errs []string
	// A tokenless GET refused with 401 answered as IMDS does when tokens are required.
	if get.Error != "" && get.Status != http.StatusUnauthorized {
		errs = append(errs, get.Error)
	}
	if put.Error != "" {
		errs = append(errs, put.Error)
	}
	c.Error = strings.Join(errs, "; ")
}

// Classify reads the fingerprint from a container's tokenless GET and token PUT. A hop
// limit too low lets every reply through but the token PUT's, whose IP TTL (the hop limit)
// the host's forwarding hop spends: the GET is answered (401 when tokens are required, 200
// when optional) while the PUT gets no reply at all.
func Classify(get, put imds.Reply) string {
	switch {
	case !get.Sent || !put.Sent:
		return FingerprintNotProbed
	case get.Status == 0:
		return FingerprintUnreachable
	case put.Status >= 200 && put.Status < 300:
		return FingerprintOK
	case put.TimedOut() && (get.Status == 200 || get.Status == 401):
		return FingerprintHopLimit
	}
	return FingerprintOther
}

// openNetNS opens pid's network namespace, checking it is still the one scanned (the PID
// may have ended and been reused since).
func openNetNS(pid int, inode int64) (*os.File, error) {
	f, err := os.Open(filepath.Join(paths.ProcDir, strconv.Itoa(pid), "ns", "net"))
	if err != nil {
		return nil, fmt.Errorf("open the network namespace of PID %d: %w", pid, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("stat the network namespace of PID %d: %w", pid, err)
	}
	if int64(st.Ino) != inode {
		f.Close()
		return nil, fmt.Errorf("PID %d is now in network namespace %d, not %d (ended and reused?)", pid, st.Ino, inode)
	}
	return f, nil
}

// dialIn dials from inside the network namespace ns refers to: on an OS thread that enters
// it and is never unlocked, so the thread ends with the goroutine and nothing else ever
// runs in the container's namespace. The socket stays in the namespace it was made in.
func dialIn(ns *os.File) imds.Dial {
	fd := int(ns.Fd())
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type dialed struct {
			conn net.Conn
			err  error
		}
		done := make(chan dialed, 1)
		go func() {
			runtime.LockOSThread()
			if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
				done <- dialed{nil, fmt.Errorf("enter the container's network namespace: %w", err)}
				return
			}
			var d net.Dialer
			conn, err := d.DialContext(ctx, network, addr)
			done <- dialed{conn, err}
		}()
		r := <-done
		return r.conn, r.err
	}
}

// behindVeth keeps the containers whose network namespace a veth of this one leads to,
// and counts the others.
func behindVeth(found []Container) (kept []Container, left int, err error) {
	if len(found) == 0 {
		return nil, 0, nil
	}
	links, err := netlink.LinkList()
	if err != nil {
		return nil, 0, fmt.Errorf("list this namespace's links: %w", err)
	}
	// Listing the links gives every peer namespace an ID here (the kernel allocates one
	// to report a veth's peer), so the containers' namespaces can be looked up by it.
	peers := map[int]bool{}
	for _, l := range links {
		if _, ok := l.(*netlink.Veth); ok && l.Attrs().NetNsID >= 0 {
			peers[l.Attrs().NetNsID] = true
		}
	}
	for _, c := range found {
		if behind(c, peers) {
			kept = append(kept, c)
		} else {
			left++
		}
	}
	return kept, left, nil
}

func behind(c Container, peers map[int]bool) bool {
	if len(peers) == 0 {
		return false
	}
	ns, err := openNetNS(c.PID, c.NetNS)
	if err != nil {
		return false // gone since the scan
	}
	defer ns.Close()
	id, err := netlink.GetNetNsIdByFd(int(ns.Fd()))
	if err != nil {
		return false
	}
	return peers[id]
}
