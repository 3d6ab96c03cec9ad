package imds

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestSocketControlLeavesNoTimeWait: a connection imdsmend closes is gone at once (a reset),
// while an orderly close leaves the socket behind (FIN_WAIT, then TIME_WAIT for a minute),
// where the next run's caller sampling would count it as a churning caller.
func TestSocketControlLeavesNoTimeWait(t *testing.T) {
	for _, tt := range []struct {
		name     string
		control  func(network, address string, rc syscall.RawConn) error
		leftOver bool
	}{
		{"orderly close", nil, true},
		{"imdsmend's sockets", socketControl(0), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			accepted := make(chan net.Conn, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					close(accepted)
					return
				}
				accepted <- c
			}()
			d := net.Dialer{Control: tt.control}
			conn, err := d.Dial("tcp4", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			server := <-accepted
			if server == nil {
				t.Fatal("accept failed")
			}
			defer server.Close()
			port := conn.LocalAddr().(*net.TCPAddr).Port
			conn.Close()
			if got := socketLeft(t, port); got != tt.leftOver {
				t.Errorf("socket from local port %d still listed after close: %v, want %v", port, got, tt.leftOver)
			}
		})
	}
}

// socketLeft reports whether /proc/net/tcp still lists a socket whose local port is port.
func socketLeft(t *testing.T, port int) bool {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Skipf("no /proc/net/tcp: %v", err)
	}
	defer f.Close()
	suffix := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 2 && strings.HasSuffix(fields[1], suffix) {
			return true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return false
}
