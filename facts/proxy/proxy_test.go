package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/tests/tree"
)

// writeTree creates files under root as tree.Write does; a value "testdata:NAME" is
// that fixture's content.
func writeTree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	out := make(map[string]string, len(files))
	for name, content := range files {
		if fixture, ok := strings.CutPrefix(content, "testdata:"); ok {
			content = string(readTestdata(t, fixture))
		}
		out[name] = content
	}
	tree.Write(t, root, out)
}

// src builds an expected source with the empty lists Gather always fills.
func src(s Source) Source {
	for _, l := range []*[]string{&s.Clients, &s.Hosts} {
		if *l == nil {
			*l = []string{}
		}
	}
	if s.PIDs == nil {
		s.PIDs = []int{}
	}
	return s
}

func TestGatherProxyFiles(t *testing.T) {
	both := []string{ClientCurl, ClientGo}
	v4 := []string{IMDSHost}
	tests := []struct {
		name   string
		files  map[string]string
		ipv6   bool
		want   []Source
		errors []string
	}{
		{"nothing configured", map[string]string{"etc/environment": ""}, false, nil, nil},
		{"Ubuntu /etc/environment without IMDS in no_proxy",
			map[string]string{"etc/environment": "testdata:environment.ubuntu"}, false,
			[]Source{src(Source{Name: "/etc/environment", Kind: KindEnvironment, Path: "/etc/environment", Line: 2,
				Variables: []string{"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"},
				Proxy:     "http://proxy.corp.example:3128/", NoProxy: "localhost,127.0.0.1,::1", Leaks: true, Clients: both, Hosts: v4})}, nil},
		{"a profile script overrides the exclusion /etc/environment has",
			map[string]string{"etc/environment": "no_proxy=169.254.169.254\n", "etc/profile.d/proxy.sh": "testdata:proxy.sh"}, false,
			[]Source{
				src(Source{Name: "/etc/environment", Kind: KindEnvironment, Path: "/etc/environment", Line: 1,
					Variables: []string{"no_proxy"}, NoProxy: IMDSHost}),
				src(Source{Name: "/etc/profile.d/proxy.sh", Kind: KindProfile, Path: "/etc/profile.d/proxy.sh", Line: 4,
					Variables: []string{"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"},
					Proxy:     "http://proxy.corp.example:3128/", NoProxy: "127.0.0.1,localhost", Leaks: true, Clients: both, Hosts: v4}),
			}, nil},
		{"the proxy in one file, the incomplete no_proxy in another: both named",
			map[string]string{"etc/environment": "no_proxy=localhost\n", "etc/profile.d/10-proxy.sh": "export http_proxy=http://p:3128\n",
				"etc/profile.d/20-other.sh": "export EDITOR=vi\n"}, false,
			[]Source{
				src(Source{Name: "/etc/environment", Kind: KindEnvironment, Path: "/etc/environment", Line: 1,
					Variables: []string{"no_proxy"}, Proxy: "http://p:3128", NoProxy: "localhost", Leaks: true, Clients: both, Hosts: v4}),
				src(Source{Name: "/etc/profile.d/10-proxy.sh", Kind: KindProfile, Path: "/etc/profile.d/10-proxy.sh", Line: 1,
					Variables: []string{"http_proxy"}, Proxy: "http://p:3128", NoProxy: "localhost", Leaks: true, Clients: both, Hosts: v4}),
			}, nil},
		{"DefaultEnvironment reaches every unit; a drop-in's NO_PROXY only helps Go",
			map[string]string{"etc/systemd/system.conf": "testdata:system.conf", "etc/systemd/system.conf.d/proxy.conf": "testdata:proxy-defaults.conf",
				"etc/systemd/system/foo.service.d/np.conf": "[Service]\nEnvironment=NO_PROXY=169.254.169.254\n"}, false,
			[]Source{
				src(Source{Name: "/etc/systemd/system.conf.d/proxy.conf", Kind: KindManager, Path: "/etc/systemd/system.conf.d/proxy.conf", Line: 3,
					Variables: []string{"http_proxy", "no_proxy"}, Proxy: "http://proxy.corp.example:3128", NoProxy: "localhost,.corp.example",
					Leaks: true, Clients: both, Hosts: v4}),
				src(Source{Name: "/etc/systemd/system/foo.service.d/np.conf (foo.service)", Kind: KindUnit, Unit: "foo.service",
					Path: "/etc/systemd/system/foo.service.d/np.conf", Line: 2, Variables: []string{"NO_PROXY"}, NoProxy: IMDSHost}),
			}, nil},
		{"Docker's drop-in: the password never shows",
			map[string]string{"etc/systemd/system/docker.service.d/http-proxy.conf": "testdata:http-proxy.conf"}, false,
			[]Source{src(Source{Name: "/etc/systemd/system/docker.service.d/http-proxy.conf (docker.service)", Kind: KindUnit,
				Path: "/etc/systemd/system/docker.service.d/http-proxy.conf", Line: 2, Unit: "docker.service",
				Variables: []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"}, Proxy: "http://REDACTED@proxy:3128",
				NoProxy: "localhost,127.0.0.1,docker-registry.example.com,.corp", Leaks: true, Clients: []string{ClientGo}, Hosts: v4})}, nil},
		{"daemon.json excludes IMDS, so dockerd is fine whatever its drop-in says",
			map[string]string{"etc/systemd/system/docker.service.d/http-proxy.conf": "[Service]\nEnvironment=HTTP_PROXY=http://p:3128\n",
				"etc/docker/daemon.json": `{"proxies": {"no-proxy": "169.254.169.254"}}`}, false,
			[]Source{
				src(Source{Name: "/etc/systemd/system/docker.service.d/http-proxy.conf (docker.service)", Kind: KindUnit,
					Path: "/etc/systemd/system/docker.service.d/http-proxy.conf", Line: 2, Unit: "docker.service",
					Variables: []string{"HTTP_PROXY"}, Proxy: "http://p:3128"}),
				src(Source{Name: "/etc/docker/daemon.json (docker.service)", Kind: KindDocker, Path: "/etc/docker/daemon.json",
					Line: 1, Unit: "docker.service", Variables: []string{"NO_PROXY", "no_proxy"}, NoProxy: IMDSHost}),
			}, nil},
		{"daemon.json from Docker's docs, IPv6 on",
			map[string]string{"etc/docker/daemon.json": "testdata:daemon.json"}, true,
			[]Source{src(Source{Name: "/etc/docker/daemon.json (docker.service)", Kind: KindDocker, Path: "/etc/docker/daemon.json",
				Line: 7, Unit: "docker.service", Variables: []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"},
				Proxy: "http://proxy.example.com:3128", NoProxy: "*.test.example.com,.example.org,127.0.0.0/8", Leaks: true, Clients: both,
				Hosts: []string{IMDSHost, IMDSv6Host}})}, nil},
		{"IPv4 excluded, IPv6 not",
			map[string]string{"etc/environment": "http_proxy=http://p\nno_proxy=169.254.169.254\n"}, true,
			[]Source{src(Source{Name: "/etc/environment", Kind: KindEnvironment, Path: "/etc/environment", Line: 1,
				Variables: []string{"http_proxy", "no_proxy"}, Proxy: "http://p", NoProxy: IMDSHost, Leaks: true, Clients: both, Hosts: []string{IMDSv6Host}})}, nil},
		{"symlinks resolve inside the root",
			map[string]string{"etc/environment": "->/srv/env/environment", "srv/env/environment": "http_proxy=http://p\n",
				"etc/profile.d": "->../srv/profile", "srv/profile/a.sh": "export no_proxy=169.254.169.254\n"}, false,
			[]Source{
				src(Source{Name: "/etc/environment", Kind: KindEnvironment, Path: "/etc/environment", Line: 1,
					Variables: []string{"http_proxy"}, Proxy: "http://p", Leaks: true, Clients: both, Hosts: v4}),
				src(Source{Name: "/etc/profile.d/a.sh", Kind: KindProfile, Path: "/etc/profile.d/a.sh", Line: 1,
					Variables: []string{"no_proxy"}, NoProxy: IMDSHost}),
			}, nil},
		{"broken files are reported, not fatal",
			map[string]string{"etc/docker/daemon.json": "{", "etc/profile.d/bad.sh": "export http_proxy=\"x\n",
				"etc/systemd/system/a.service.d/x.conf": "[Service]\nEnvironment=\"http_proxy=x\n", "etc/environment": "->/etc/environment"}, false,
			nil, []string{
				"/etc/environment: resolve /etc/environment: too many levels of symbolic links",
				"/etc/profile.d/bad.sh: line 1: reached EOF without closing quote `\"`",
				"/etc/systemd/system/a.service.d/x.conf: line 2: Environment= has an unbalanced quote; systemd ignores the assignment",
				"/etc/docker/daemon.json: not JSON: unexpected end of file",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, tt.files)
			p, err := Gather(context.Background(), paths.New(root), Hosts(tt.ipv6))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, p.Sources, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("sources (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.errors, p.Errors, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGatherProxyOddFiles(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"etc/profile.d/a.sh": "export http_proxy=http://p\n"})
	if err := syscall.Mkfifo(filepath.Join(root, "etc/profile.d/fifo.sh"), 0o644); err != nil {
		t.Fatal(err)
	}
	huge := "# " + strings.Repeat("x", MaxConfigFile) + "\nexport no_proxy=169.254.169.254\n"
	writeTree(t, root, map[string]string{"etc/profile.d/huge.sh": huge})
	p, err := Gather(context.Background(), paths.New(root), Hosts(false))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/etc/profile.d/fifo.sh: not a regular file (p---------)",
		fmt.Sprintf("/etc/profile.d/huge.sh: larger than %d bytes; not read", MaxConfigFile),
	}
	if diff := cmp.Diff(want, p.Errors); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if len(p.Sources) != 1 || !p.Sources[0].Leaks {
		t.Errorf("sources = %+v, want a.sh leaking", p.Sources)
	}
}

// TestGatherProxyLinkedDir: a configuration directory that is a link leads where it
// leads inside the root; followed on the host, its files would go unseen.
func TestGatherProxyLinkedDir(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"srv/profile.d/a.sh": "export http_proxy=http://p\n", "etc/environment": ""})
	if err := os.Symlink("/srv/profile.d", filepath.Join(root, "etc/profile.d")); err != nil {
		t.Fatal(err)
	}
	p, err := Gather(context.Background(), paths.New(root), Hosts(false))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Sources) != 1 || p.Sources[0].Path != "/etc/profile.d/a.sh" || !p.Sources[0].Leaks {
		t.Errorf("sources = %+v, want /etc/profile.d/a.sh leaking", p.Sources)
	}
}

// writeProc adds a process to a fake /proc under root.
func writeProc(t testing.TB, root string, pid int, comm, cgroup string, environ []byte) {
	t.Helper()
	dir := filepath.Join(root, "proc", fmt.Sprint(pid))
	writeTree(t, dir, map[string]string{"comm": comm + "\n", "cgroup": cgroup, "environ": string(environ)})
}

func TestGatherProxyProcesses(t *testing.T) {
	root := t.TempDir()
	dockerd := readTestdata(t, "dockerd.environ")
	writeTree(t, root, map[string]string{
		"etc/systemd/system/docker.service.d/http-proxy.conf": "testdata:http-proxy.conf",
		"proc/self":      "->4242",
		"proc/cmdline":   "quiet\n",
		"proc/sys/x":     "",
		"proc/2/comm":    "kthreadd\n",
		"proc/2/environ": "",
	})
	writeProc(t, root, 1, "systemd", "0::/init.scope\n", []byte("HOME=/\x00TERM=linux\x00"))
	writeProc(t, root, 812, "dockerd", string(readTestdata(t, "dockerd.cgroup")), dockerd)
	writeProc(t, root, 813, "dockerd", string(readTestdata(t, "dockerd.cgroup")), dockerd)
	writeProc(t, root, 900, "bash", "0::/user.slice/user-1000.slice/session-3.scope\n",
		[]byte("USER=admin\x00http_proxy=http://p:3128\x00no_proxy=localhost,169.254.169.254\x00"))
	writeProc(t, root, 950, "sshd", "12:name=systemd:/system.slice/ssh.service\n1:cpu:/\n",
		[]byte("ALL_PROXY=socks5://p:1080\x00"))
	// A large environment (past the first read) with the proxy at its end.
	writeProc(t, root, 960, "java", "0::/system.slice/app.service\n",
		[]byte(strings.Repeat("JAVA_OPTS=-Xmx4g -Dx=y\x00", 5000)+"http_proxy=http://p:3128\x00"))
	p, err := Gather(context.Background(), paths.New(root), Hosts(false))
	if err != nil {
		t.Fatal(err)
	}
	want := []Source{
		src(Source{Name: "/etc/systemd/system/docker.service.d/http-proxy.conf (docker.service)", Kind: KindUnit,
			Path: "/etc/systemd/system/docker.service.d/http-proxy.conf", Line: 2, Unit: "docker.service",
			Variables: []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"}, Proxy: "http://REDACTED@proxy:3128",
			NoProxy: "localhost,127.0.0.1,docker-registry.example.com,.corp", Leaks: true, Clients: []string{ClientGo}, Hosts: []string{IMDSHost}}),
		src(Source{Name: "dockerd[812,813] in docker.service", Kind: KindProcess, Path: "/proc/812/environ", Unit: "docker.service",
			PIDs: []int{812, 813}, Command: "dockerd", Variables: []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"},
			Proxy: "http://REDACTED@proxy.corp.example:3128", NoProxy: "localhost,127.0.0.1,.corp.example", Leaks: true,
			Clients: []string{ClientGo}, Hosts: []string{IMDSHost}, RestartFixes: true}),
		src(Source{Name: "bash[900] in session-3.scope", Kind: KindProcess, Path: "/proc/900/environ", Unit: "session-3.scope",
			PIDs: []int{900}, Command: "bash", Variables: []string{"http_proxy", "no_proxy"}, Proxy: "http://p:3128", NoProxy: "localhost,169.254.169.254"}),
		src(Source{Name: "sshd[950] in ssh.service", Kind: KindProcess, Path: "/proc/950/environ", Unit: "ssh.service",
			PIDs: []int{950}, Command: "sshd", Variables: []string{"ALL_PROXY"}, Proxy: "socks5://p:1080", Leaks: true,
			Clients: []string{ClientCurl}, Hosts: []string{IMDSHost}}),
		src(Source{Name: "java[960] in app.service", Kind: KindProcess, Path: "/proc/960/environ", Unit: "app.service",
			PIDs: []int{960}, Command: "java", Variables: []string{"http_proxy"}, Proxy: "http://p:3128", Leaks: true,
			Clients: []string{ClientCurl, ClientGo}, Hosts: []string{IMDSHost}}),
	}
	if diff := cmp.Diff(want, p.Sources); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
	if p.Processes != 7 {
		t.Errorf("processes read = %d, want 7", p.Processes)
	}
}

// blockingFile is a /proc file whose read hangs until released, as reading the environ of
// a process in D state does; it counts opens and closes.
type blockingFile struct {
	entered chan<- struct{}
	release <-chan struct{}
	closed  *atomic.Int64
}

func (f blockingFile) Read([]byte) (int, error) {
	f.entered <- struct{}{}
	<-f.release
	return 0, io.EOF
}

func (f blockingFile) Close() error { f.closed.Add(1); return nil }

// TestGatherProxyStuckRead: a process whose environ read hangs costs one pass its
// deadline, then stays skipped (and said so) while that read is blocked: however many
// passes run, one goroutine and one descriptor stay behind, not one per pass. Once the
// read returns, the process is read again.
func TestGatherProxyStuckRead(t *testing.T) {
	root := t.TempDir()
	writeProc(t, root, 42, "app", "0::/system.slice/app.service\n", []byte("http_proxy=http://p:3128\x00"))
	writeProc(t, root, 43, "bash", "0::/init.scope\n", []byte("HOME=/\x00"))
	stuck := filepath.Join(root, "proc", "42", "environ")
	entered, release := make(chan struct{}), make(chan struct{})
	var opened, closed atomic.Int64
	openProc = func(name string) (io.ReadCloser, error) {
		if name == stuck {
			opened.Add(1)
			return blockingFile{entered, release, &closed}, nil
		}
		return os.Open(name)
	}
	t.Cleanup(func() { openProc = func(name string) (io.ReadCloser, error) { return os.Open(name) } })
	readers := environReads.live.Load()

	// The first pass hangs in the read until its deadline (here: cancelled once in it).
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-entered; cancel() }()
	if _, err := Gather(ctx, paths.New(root), Hosts(false)); !errors.Is(err, context.Canceled) {
		t.Fatalf("pass with a hung read: %v, want it cancelled", err)
	}
	for pass := range 3 {
		p, err := Gather(context.Background(), paths.New(root), Hosts(false))
		if err != nil {
			t.Fatalf("pass %d: %v", pass, err)
		}
		if p.Processes != 1 || len(p.Errors) != 1 || !strings.HasPrefix(p.Errors[0], "/proc/42/environ: a read from an earlier pass is still blocked") {
			t.Errorf("pass %d: %d processes read, errors %q; want 43 read and 42 said to be skipped", pass, p.Processes, p.Errors)
		}
		if got := environReads.live.Load() - readers; got != 1 || opened.Load() != 1 || closed.Load() != 0 {
			t.Errorf("pass %d: %d reader goroutines, %d opens, %d closes left behind; want one hung read in all", pass, got, opened.Load(), closed.Load())
		}
	}

	// The kernel lets go: the abandoned read ends, and the next pass reads the process.
	close(release)
	environReads.readers.Wait()
	if got := environReads.live.Load() - readers; got != 0 || closed.Load() != 1 {
		t.Errorf("after the read returned: %d reader goroutines, %d closes; want 0 and 1", got, closed.Load())
	}
	go func() { <-entered }() // the released file reads as empty at once
	p, err := Gather(context.Background(), paths.New(root), Hosts(false))
	if err != nil || p.Processes != 2 || len(p.Errors) != 0 {
		t.Errorf("pass after the read returned: %v, %d processes, errors %q; want both read", err, p.Processes, p.Errors)
	}
}

func TestUnitOfCgroup(t *testing.T) {
	tests := map[string]string{
		"0::/system.slice/docker.service\n":                                      "docker.service",
		"0::/system.slice/docker-0123abcd.scope\n":                               "docker-0123abcd.scope",
		"0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.service\n": "user@1000.service",
		"0::/init.scope\n": "init.scope",
		"0::/\n":           "",
		"0::/kubepods/besteffort/pod1234/0123abcd\n":                                 "",
		"9:name=systemd:/system.slice/ssh.service\n0::/\n":                           "",
		"12:pids:/system.slice/x.service\n1:name=systemd:/system.slice/cron.service": "cron.service",
		"": "",
	}
	for in, want := range tests {
		if got := unitOfCgroup([]byte(in)); got != want {
			t.Errorf("unitOfCgroup(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkGatherProxy measures the proxy probe on a root shaped like a busy host: the
// usual configuration files and 500 processes, one in five with a proxy environment.
func BenchmarkGatherProxy(b *testing.B) {
	root := b.TempDir()
	writeTree(b, root, map[string]string{
		"etc/environment":                                         "testdata:environment.ubuntu",
		"etc/profile.d/proxy.sh":                                  "testdata:proxy.sh",
		"etc/systemd/system.conf":                                 "testdata:system.conf",
		"etc/systemd/system.conf.d/p.conf":                        "testdata:proxy-defaults.conf",
		"etc/systemd/system/docker.service.d/http-proxy.conf":     "testdata:http-proxy.conf",
		"etc/systemd/system/containerd.service.d/http-proxy.conf": "testdata:containerd-proxy.conf",
		"etc/docker/daemon.json":                                  "testdata:daemon.json",
	})
	// A typical service environment is a few hundred bytes to a few KiB.
	filler := []byte(strings.Repeat("LC_ALL=C.UTF-8\x00PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin\x00", 20))
	dockerd := readTestdata(b, "dockerd.environ")
	for pid := 1; pid <= 500; pid++ {
		env, cgroup := filler, fmt.Sprintf("0::/system.slice/svc%d.service\n", pid%40)
		if pid%5 == 0 {
			env, cgroup = append(slices.Clone(filler), dockerd...), "0::/system.slice/docker.service\n"
		}
		writeProc(b, root, pid, fmt.Sprintf("proc%d", pid%40), cgroup, env)
	}
	hosts := Hosts(true)
	b.ResetTimer()
	for b.Loop() {
		p, err := Gather(context.Background(), paths.New(root), hosts)
		if err != nil || p.Processes != 500 {
			b.Fatalf("processes %d, err %v", p.Processes, err)
		}
	}
}

// TestRestartFixes: a restart is worth it while the unit's files leak, or when they
// changed after the process started; not when the process already got what they give
// (a restart loop otherwise).
func TestRestartFixes(t *testing.T) {
	const btime = 1795779818
	// dockerd.stat was captured from a real process (command renamed): it started 2423.97 s
	// after boot.
	started := time.Unix(btime, 0).Add(2423970 * time.Millisecond)
	fixed := "[Service]\nEnvironment=HTTP_PROXY=http://p:3128\nEnvironment=NO_PROXY=169.254.169.254\n"
	leaking := "[Service]\nEnvironment=HTTP_PROXY=http://p:3128\n"
	tests := []struct {
		name     string
		dropIn   string
		modified time.Time
		stat     bool
		want     bool
	}{
		{"files still leak: no_proxy fixes them, then the restart helps", leaking, started.Add(-time.Hour), true, true},
		{"files fixed after the process started", fixed, started.Add(time.Minute), true, true},
		{"process started after the fix: a restart changes nothing", fixed, started.Add(-time.Minute), true, false},
		{"start unknown", fixed, started.Add(-time.Minute), false, true},
		{"the unit's files set no proxy", "[Service]\nEnvironment=NO_PROXY=x\n", started.Add(time.Minute), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			dropIn := "etc/systemd/system/docker.service.d/proxy.conf"
			writeTree(t, root, map[string]string{dropIn: tt.dropIn, "proc/stat": fmt.Sprintf("cpu  1 2 3\nbtime %d\nprocesses 9\n", btime)})
			if err := os.Chtimes(filepath.Join(root, dropIn), tt.modified, tt.modified); err != nil {
				t.Fatal(err)
			}
			// The process still has the old environment: it leaks.
			writeProc(t, root, 812, "dockerd", "0::/system.slice/docker.service\n", []byte("HTTP_PROXY=http://p:3128\x00"))
			if tt.stat {
				writeTree(t, root, map[string]string{"proc/812/stat": "testdata:dockerd.stat"})
			}
			p, err := Gather(context.Background(), paths.New(root), Hosts(false))
			if err != nil {
				t.Fatal(err)
			}
			var got *Source
			for i := range p.Sources {
				if p.Sources[i].Kind == KindProcess {
					got = &p.Sources[i]
				}
			}
			if got == nil || !got.Leaks || got.RestartFixes != tt.want {
				t.Errorf("process source %+v, want leaking with restart_fixes %v", got, tt.want)
			}
		})
	}
}

func TestProcStart(t *testing.T) {
	boot := time.Unix(1795779818, 0)
	dir := t.TempDir()
	for name, stat := range map[string]string{
		"plain":  string(readTestdata(t, "dockerd.stat")),
		"parens": strings.Replace(string(readTestdata(t, "dockerd.stat")), "(dockerd)", "(a) b (c)", 1),
	} {
		p := filepath.Join(dir, name)
		writeTree(t, dir, map[string]string{name: stat})
		stat := statFields(p)
		if got, want := procStart(stat, boot), boot.Add(2423970*time.Millisecond); !got.Equal(want) {
			t.Errorf("%s: procStart = %v, want %v", name, got, want)
		}
		if got, want := parentPID(stat), 1; got != want {
			t.Errorf("%s: parentPID = %d, want %d", name, got, want)
		}
	}
	missing := statFields(filepath.Join(dir, "missing"))
	if got := procStart(missing, boot); !got.IsZero() {
		t.Errorf("missing stat: %v", got)
	}
	if got := parentPID(missing); got != -1 {
		t.Errorf("missing stat: parentPID = %d, want -1", got)
	}
	if got := bootTime([]byte("cpu 1\nbtime 1795779818\n")); !got.Equal(boot) {
		t.Errorf("bootTime = %v", got)
	}
}
