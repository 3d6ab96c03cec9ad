package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
)

// notifySocket is a NOTIFY_SOCKET as systemd provides it: a unixgram socket the test
// reads sd_notify messages from, in the order they were sent. It reads all the time, so a
// sender never blocks on a full queue however slowly the test looks.
type notifySocket struct {
	path   string
	signal chan struct{} // a message arrived

	mu     sync.Mutex
	log    []string // every message received
	next   int      // the first message waitFor has not looked at
	closed bool
}

func listenNotify(t testing.TB) *notifySocket {
	t.Helper()
	n := &notifySocket{path: filepath.Join(t.TempDir(), "notify"), signal: make(chan struct{}, 1)}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			n.mu.Lock()
			if err != nil {
				n.closed = true
			} else {
				n.log = append(n.log, string(buf[:k]))
			}
			n.mu.Unlock()
			select {
			case n.signal <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return n
}

// waitFor returns the next message that has a line starting with prefix, passing over
// the others (watchdog pings between the interesting ones), or fails when ctx ends.
func (n *notifySocket) waitFor(ctx context.Context, prefix string) (string, error) {
	for {
		n.mu.Lock()
		for n.next < len(n.log) {
			msg := n.log[n.next]
			n.next++
			for _, line := range strings.Split(msg, "\n") {
				if strings.HasPrefix(line, prefix) {
					n.mu.Unlock()
					return msg, nil
				}
			}
		}
		closed := n.closed
		n.mu.Unlock()
		if closed {
			return "", errors.New("notify socket closed")
		}
		select {
		case <-n.signal:
		case <-ctx.Done():
			return "", fmt.Errorf("no %q within the deadline; received: %q", prefix, n.received())
		}
	}
}

// expect waits up to d for the next message with a line starting with prefix.
func (n *notifySocket) expect(t testing.TB, d time.Duration, prefix string) string {
	t.Helper()
	msg, err := n.waitFor(within(t, d), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func (n *notifySocket) received() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.log...)
}

// status is the STATUS= line of a message.
func status(msg string) string {
	for _, line := range strings.Split(msg, "\n") {
		if s, ok := strings.CutPrefix(line, "STATUS="); ok {
			return s
		}
	}
	return ""
}

// within bounds a wait on the notify socket.
func within(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestNotifyOneshotStatus(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	serveSim(sim.FaultOK)(ctx, t, ns)
	r := newRun(t, ns)
	n := listenNotify(t)
	name, args := hermetic(bins.Imdsmend, "check", "--policy", r.policy, "--state-dir", r.stateDir)
	res, err := ns.Exec(ctx, []string{"NOTIFY_SOCKET=" + n.path}, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != report.ExitHealthy {
		t.Fatalf("check: exit %d\n%s%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	msg, err := n.waitFor(within(t, 10*time.Second), "STATUS=")
	if err != nil {
		t.Fatal(err)
	}
	if want := "STATUS=check: healthy; 0 open findings; IMDS ok; 0 fixes applied"; msg != want {
		t.Errorf("got %q, want %q", msg, want)
	}
	if got := n.received(); len(got) != 1 {
		t.Errorf("a one-shot command sends STATUS only, got %q", got)
	}
}
