package callers

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/internal/paths"
)

// tree is a generated /proc under a --root.
type tree struct {
	tb    testing.TB
	root  string
	tcp   map[string]*strings.Builder // file name → lines
	lines int
}

func newTree(tb testing.TB) *tree {
	t := &tree{tb: tb, root: tb.TempDir(), tcp: map[string]*strings.Builder{}}
	for _, name := range []string{"tcp", "tcp6"} {
		t.tcp[name] = &strings.Builder{}
		t.tcp[name].WriteString("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n")
	}
	return t
}

// socket adds a line to /proc/net/tcp (or tcp6 for an IPv6 remote).
func (t *tree) socket(remote string, state string, inode uint64) {
	ap := netip.MustParseAddrPort(remote)
	file, local := "tcp", "0100007F:9C40"
	if ap.Addr().Is6() {
		file, local = "tcp6", "00000000000000000000000001000000:9C40"
	}
	fmt.Fprintf(t.tcp[file], "%4d: %s %s %s 00000000:00000000 00:00000000 00000000     0        0 %d 1 0000000000000000 20 4 30 10 -1\n",
		t.lines, local, ProcAddr(ap), state, inode)
	t.lines++
}

// closedSocket adds a connection to IMDS that no process holds any more (TIME_WAIT), from
// local port port.
func (t *tree) closedSocket(port int) {
	fmt.Fprintf(t.tcp["tcp"], "%4d: 0100007F:%04X %s %s 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 20 4 30 10 -1\n",
		t.lines, port, ProcAddr(netip.MustParseAddrPort("169.254.169.254:80")), timeWait)
	t.lines++
}

// process adds /proc/PID with fds linking to the given targets.
func (t *tree) process(pid int, comm, cgroup string, uid int, fds ...string) {
	dir := filepath.Join(t.root, "proc", strconv.Itoa(pid))
	t.write(filepath.Join(dir, "comm"), comm+"\n")
	t.write(filepath.Join(dir, "cgroup"), cgroup)
	t.write(filepath.Join(dir, "status"), fmt.Sprintf("Name:\t%s\nUid:\t%d\t%d\t%d\t%d\n", comm, uid, uid, uid, uid))
	if err := os.MkdirAll(filepath.Join(dir, "fd"), 0o755); err != nil {
		t.tb.Fatal(err)
	}
	for i, target := range fds {
		if err := os.Symlink(target, filepath.Join(dir, "fd", strconv.Itoa(i))); err != nil {
			t.tb.Fatal(err)
		}
	}
}

func (t *tree) write(name, data string) {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.tb.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.tb.Fatal(err)
	}
}

func (t *tree) paths() paths.Paths {
	for name, b := range t.tcp {
		t.write(filepath.Join(t.root, "proc", "net", name), b.String())
	}
	return paths.New(t.root)
}

func sock(ino int) string { return fmt.Sprintf("socket:[%d]", ino) }

const (
	established = "01"
	timeWait    = "06"
	listen      = "0A"
	v2Service   = "0::/system.slice/metrics-agent.service\n"
)

func TestProcAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:3306":         "0100007F:0CEA",
		"169.254.169.254:80":     "FEA9FEA9:0050",
		"[fd00:ec2::254]:80":     "C20E00FD000000000000000054020000:0050",
		"[::ffff:10.0.0.1]:8080": "0000000000000000FFFF00000100000A:1F90",
	} {
		if got := ProcAddr(netip.MustParseAddrPort(in)); got != want {
			t.Errorf("ProcAddr(%s) = %s; want %s", in, got, want)
		}
	}
}

func TestGather(t *testing.T) {
	tr := newTree(t)
	tr.socket("169.254.169.254:80", established, 101)
	tr.socket("169.254.169.254:80", established, 102)
	tr.socket("169.254.169.254:80", established, 103)
	tr.socket("[fd00:ec2::254]:80", established, 104)
	tr.socket("[::ffff:169.254.169.254]:80", established, 105)
	tr.socket("169.254.169.254:80", timeWait, 0)       // closed: nobody holds it
	tr.socket("169.254.169.254:80", listen, 106)       // not a connection
	tr.socket("169.254.169.254:443", established, 107) // not IMDS
	tr.socket("10.0.0.1:80", established, 108)
	tr.socket("169.254.169.254:80", established, 109) // imdsmend's own
	tr.process(10, "metrics-agent", v2Service, 998, sock(101), sock(102), sock(104), "/dev/null", sock(108))
	tr.process(20, "curl", "0::/user.slice/user-1000.slice/session-3.scope\n", 1000, sock(103), "pipe:[99]", "socket:[", "socket:[x]")
	tr.process(30, "legacy", "12:pids:/\n1:name=systemd:/system.slice/legacy.service\n", 0, sock(105))
	tr.process(40, "imdsmend", v2Service, 0, sock(109))
	tr.process(50, "other", "", 0, sock(106), sock(107))
	// Gone mid-scan: fds listed, then the rest of it vanished.
	tr.process(60, "gone", "", 0, sock(101))
	if err := os.Remove(filepath.Join(tr.root, "proc", "60", "comm")); err != nil {
		t.Fatal(err)
	}
	// Gone before its fds were read.
	if err := os.MkdirAll(filepath.Join(tr.root, "proc", "70"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := Gather(context.Background(), Config{Paths: tr.paths(), Samples: 3, Self: 40})
	if err != nil {
		t.Fatal(err)
	}
	want := &Callers{Samples: 3, Connections: 6, Unattributed: 1, Top: []Caller{
		{PID: 10, Command: "metrics-agent", UID: 998, Unit: "metrics-agent.service", Connections: 3},
		{PID: 20, Command: "curl", UID: 1000, Unit: "session-3.scope", Connections: 1},
		{PID: 30, Command: "legacy", UID: 0, Unit: "legacy.service", Connections: 1},
	}}
	c.WindowSeconds = 0
	if d := cmp.Diff(want, c); d != "" {
		t.Errorf("Gather (-want +got):\n%s", d)
	}
}

// TestGatherQuiet: without a connection to IMDS one sample is taken, and no process read.
func TestGatherQuiet(t *testing.T) {
	tr := newTree(t)
	tr.socket("10.0.0.1:80", established, 1)
	c, err := Gather(context.Background(), Config{Paths: tr.paths(), Samples: 3})
	if err != nil {
		t.Fatal(err)
	}
	if c.Samples != 1 || c.Connections != 0 || len(c.Top) != 0 {
		t.Errorf("quiet: %+v; want one sample, nothing seen", c)
	}
}

// TestGatherSamplesAgain: the window is sampled again only when there is a caller to rank:
// a process holding a connection, or a churn of closed ones; a few closed sockets of an
// earlier client alone take one sample.
func TestGatherSamplesAgain(t *testing.T) {
	for _, tt := range []struct {
		name    string
		closed  int
		held    bool
		samples int
	}{
		{"one closed socket", 1, false, 1},
		{"closed sockets below the hint", churnHint - 1, false, 1},
		{"a churn of closed sockets", churnHint, false, 3},
		{"a process holds one", 0, true, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTree(t)
			for i := range tt.closed {
				tr.closedSocket(0x9C41 + i)
			}
			if tt.held {
				tr.socket("169.254.169.254:80", established, 201)
				tr.process(10, "poller", "", 0, sock(201))
			}
			c, err := Gather(context.Background(), Config{Paths: tr.paths(), Samples: 3})
			if err != nil {
				t.Fatal(err)
			}
			if c.Samples != tt.samples {
				t.Errorf("samples %d, want %d", c.Samples, tt.samples)
			}
		})
	}
}

func TestGatherCancelled(t *testing.T) {
	tr := newTree(t)
	tr.socket("169.254.169.254:80", established, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Gather(ctx, Config{Paths: tr.paths(), Samples: 2}); err == nil {
		t.Error("a cancelled context: no error")
	}
}

func TestParseUnit(t *testing.T) {
	for in, want := range map[string]string{
		"0::/system.slice/amazon-ssm-agent.service\n":                        "amazon-ssm-agent.service",
		"0::/system.slice/docker-0123abcd.scope/init\n":                      "docker-0123abcd.scope",
		"0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope": "x.scope",
		"0::/\n":  "",
		"":        "",
		"garbage": "",
		"1:name=systemd:/system.slice/cron.service\n0::/system.slice/a.service\n": "a.service",
	} {
		if got := ParseUnit([]byte(in)); got != want {
			t.Errorf("ParseUnit(%q) = %q; want %q", in, got, want)
		}
	}
}

// BenchmarkScan: one scan of a tree with 10,000 sockets and 2,000 processes with 5
// sockets each; 200 of them hold 5 connections to IMDS each (docs/bench.md).
func BenchmarkScan(b *testing.B) {
	tr := newTree(b)
	ino := 1000
	for i := range 2000 {
		fds := make([]string, 5)
		for j := range fds {
			ino++
			remote := "10.0.0.1:443"
			if i < 200 {
				remote = "169.254.169.254:80"
			}
			tr.socket(remote, established, uint64(ino))
			fds[j] = sock(ino)
		}
		tr.process(1000+i, "worker", v2Service, 0, fds...)
	}
	p := tr.paths()
	// CPU time too: wall time on a shared, loaded machine says little.
	before := cpuTime(b)
	n := 0
	for b.Loop() {
		c, err := Gather(context.Background(), Config{Paths: p, Samples: 1})
		if err != nil || c.Connections != 1000 || len(c.Top) != TopN {
			b.Fatalf("%v, %+v", err, c)
		}
		n++
	}
	b.ReportMetric(float64((cpuTime(b)-before).Milliseconds())/float64(n), "cpu-ms/op")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
