// Package harness builds the end-to-end test beds: network namespaces that hold
// 169.254.169.254, the binaries under test, and "makers" that create and check each known
// blocker. The e2e tests and `make demo` share it. Nothing here ever talks to
// 169.254.169.254 outside a namespace it created.
package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// IMDSAddr is the address every namespace puts on its loopback.
const IMDSAddr = "169.254.169.254"

// IMDSv6Addr is the IPv6 IMDS address.
const IMDSv6Addr = "fd00:ec2::254"

// Namespace is a network namespace created for one test or demo.
type Namespace struct {
	Name    string
	mu      sync.Mutex
	procs   []*Proc
	onClose []func()
}

// NewNamespace creates a namespace with loopback up and the IMDS addresses on it.
func NewNamespace() (*Namespace, error) {
	return newNamespace(
		[]string{"addr", "add", IMDSAddr + "/32", "dev", "lo"},
		[]string{"-6", "addr", "add", IMDSv6Addr + "/128", "dev", "lo", "nodad"},
	)
}

// newNamespace creates a namespace with loopback up, then runs `ip -n NAME` with each of
// setup.
func newNamespace(setup ...[]string) (*Namespace, error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	n := &Namespace{Name: "imdsmend-" + hex.EncodeToString(b[:])}
	if err := run("ip", "netns", "add", n.Name); err != nil {
		return nil, err
	}
	if err := n.ip(append([][]string{{"link", "set", "lo", "up"}}, setup...)...); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// ip runs `ip -n NAME args` for each args, stopping at the first failure.
func (n *Namespace) ip(cmds ...[]string) error {
	for _, args := range cmds {
		if err := run("ip", append([]string{"-n", n.Name}, args...)...); err != nil {
			return err
		}
	}
	return nil
}

// Close stops every process started in the namespace and deletes it.
func (n *Namespace) Close() {
	n.mu.Lock()
	procs := n.procs
	n.procs = nil
	n.mu.Unlock()
	for _, p := range procs {
		p.Stop()
	}
	n.mu.Lock()
	hooks := n.onClose
	n.onClose = nil
	n.mu.Unlock()
	for i := len(hooks) - 1; i >= 0; i-- {
		hooks[i]()
	}
	_ = run("ip", "netns", "del", n.Name)
}

// OnClose registers f to run when the namespace closes, after its processes have stopped
// (last registered, first run), e.g. to remove a socket directory.
func (n *Namespace) OnClose(f func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.onClose = append(n.onClose, f)
}

// notInherited are the caller's variables that would make what runs in a namespace
// depend on where the tests run: proxy settings (the proxy probe reads every process's
// environment, so a simulator started with http_proxy would be a leak to report), endpoint
// overrides that would send imdsmend past the namespace's 169.254.169.254, and the systemd
// context of a test runner that is itself a service.
var notInherited = []string{
	"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY",
	"AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL",
	"NOTIFY_SOCKET", "JOURNAL_STREAM", "WATCHDOG_USEC", "WATCHDOG_PID",
}

// Environ is the environment for programs the test beds run: the caller's, without
// notInherited, in the C locale (tests match the messages of dd, iptables and the like),
// then extra ("NAME=value", later ones win).
func Environ(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(notInherited, name) {
			env = append(env, kv)
		}
	}
	return append(append(env, "LC_ALL=C"), extra...)
}

// Command returns a command that runs inside the namespace, with Environ().
func (n *Namespace) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	full := append([]string{"netns", "exec", n.Name, name}, args...)
	cmd := exec.CommandContext(ctx, "ip", full...)
	cmd.Env = Environ()
	// Kill the whole process group so nothing outlives the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// Result is the outcome of a command run to completion.
type Result struct {
	Stdout, Stderr string
	ExitCode       int
	Duration       time.Duration
}

// Exec runs a command inside the namespace with Environ(env...) and waits for it. A
// non-zero exit is not an error; failing to start is.
func (n *Namespace) Exec(ctx context.Context, env []string, name string, args ...string) (Result, error) {
	cmd := n.Command(ctx, name, args...)
	cmd.Env = Environ(env...)
	res, err := Run(cmd)
	if err != nil {
		return res, fmt.Errorf("run %s in %s: %w", name, n.Name, err)
	}
	return res, nil
}

// Run runs cmd to completion, capturing its output. A non-zero exit is not an error;
// failing to start is.
func Run(cmd *exec.Cmd) (Result, error) {
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	res := Result{Stdout: out.String(), Stderr: errb.String(), Duration: time.Since(start)}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return res, err
	}
	if ee != nil {
		res.ExitCode = ee.ExitCode()
	}
	return res, nil
}

// Proc is a background process inside a namespace.
type Proc struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan struct{}
}

// Start runs a command in the background; Close stops it.
func (n *Namespace) Start(name string, args ...string) (*Proc, error) {
	cmd := n.Command(context.Background(), name, args...)
	p := &Proc{cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &syncWriter{w: &p.out}, &syncWriter{w: &p.out}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s in %s: %w", name, n.Name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	n.mu.Lock()
	n.procs = append(n.procs, p)
	n.mu.Unlock()
	return p, nil
}

// Stop kills the process group and waits for it.
func (p *Proc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// PID is the process's ID (`ip netns exec` execs the command, so it is the command's).
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Output is what the process wrote so far (stdout and stderr).
func (p *Proc) Output() string {
	outMu.Lock()
	defer outMu.Unlock()
	return p.out.String()
}

var outMu sync.Mutex

type syncWriter struct{ w *bytes.Buffer }

func (s *syncWriter) Write(b []byte) (int, error) {
	outMu.Lock()
	defer outMu.Unlock()
	return s.w.Write(b)
}

// WaitTCP dials addr from inside the namespace until it accepts or ctx ends.
func (n *Namespace) WaitTCP(ctx context.Context, addr string) error {
	backoff := 5 * time.Millisecond
	for {
		conn, err := n.Dial(ctx, "tcp", addr)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s in %s: %w (last error: %v)", addr, n.Name, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 200*time.Millisecond)
	}
}

// Dial opens a connection from inside the namespace. The socket keeps its namespace after
// the thread returns to the host's.
func (n *Namespace) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := n.Do(func() error {
		d := net.Dialer{Timeout: time.Second}
		var err error
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// Do runs f on an OS thread that has entered the namespace. Sockets f opens and processes
// it starts (fork inherits the thread's namespace) stay in the namespace; unlike Exec, no
// `ip netns exec` sits in between.
func (n *Namespace) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(n.Name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		err = f()
		if netns.Set(orig) == nil {
			// Only a thread back in the host namespace may serve other goroutines;
			// otherwise it stays locked and exits with this goroutine.
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %w: %s", name, args, err, bytes.TrimSpace(out))
	}
	return nil
}
