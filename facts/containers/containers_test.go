package containers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/time/rate"

	"github.com/imdsmend/imdsmend/facts/imds"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/internal/types"
)

func TestClassify(t *testing.T) {
	timedOut := imds.Reply{Sent: true, Class: types.ClassTimeout, Error: "token PUT: no answer within the time bound"}
	tests := []struct {
		name     string
		get, put imds.Reply
		want     string
	}{
		{"tokens required, PUT hangs: the hop limit", imds.Reply{Sent: true, Status: 401, Class: types.ClassHTTP401}, timedOut, FingerprintHopLimit},
		{"tokens optional, PUT hangs: the hop limit", imds.Reply{Sent: true, Status: 200, Class: types.ClassOK}, timedOut, FingerprintHopLimit},
		{"healthy, tokens required", imds.Reply{Sent: true, Status: 401, Class: types.ClassHTTP401}, imds.Reply{Sent: true, Status: 200, Class: types.ClassOK}, FingerprintOK},
		{"any 2xx to the PUT is an answer", imds.Reply{Sent: true, Status: 401, Class: types.ClassHTTP401}, imds.Reply{Sent: true, Status: 299, Class: types.ClassOK}, FingerprintOK},
		{"healthy, tokens optional", imds.Reply{Sent: true, Status: 200, Class: types.ClassOK}, imds.Reply{Sent: true, Status: 200, Class: types.ClassOK}, FingerprintOK},
		{"token reply without the TTL echo still answers", imds.Reply{Sent: true, Status: 401}, imds.Reply{Sent: true, Status: 200, Class: types.ClassBadResponse}, FingerprintOK},
		{"nothing answers the GET either", imds.Reply{Sent: true, Class: types.ClassTimeout}, timedOut, FingerprintUnreachable},
		{"GET refused", imds.Reply{Sent: true, Class: types.ClassConnectionRefused}, imds.Reply{Sent: true, Class: types.ClassConnectionRefused}, FingerprintUnreachable},
		{"endpoint disabled: 403 to both", imds.Reply{Sent: true, Status: 403, Class: types.ClassHTTP403}, imds.Reply{Sent: true, Status: 403, Class: types.ClassHTTP403}, FingerprintOther},
		{"GET 403 while the PUT hangs is no hop limit", imds.Reply{Sent: true, Status: 403, Class: types.ClassHTTP403}, timedOut, FingerprintOther},
		{"PUT throttled", imds.Reply{Sent: true, Status: 401}, imds.Reply{Sent: true, Status: 429, Class: types.ClassHTTP429}, FingerprintOther},
		{"PUT reset mid-reply is no timeout", imds.Reply{Sent: true, Status: 401}, imds.Reply{Sent: true, Class: types.ClassBadResponse}, FingerprintOther},
		{"PUT not sent: the budget was spent", imds.Reply{Sent: true, Status: 401}, imds.Reply{Class: types.ClassTimeout}, FingerprintNotProbed},
		{"GET not sent", imds.Reply{Class: types.ClassTimeout}, timedOut, FingerprintNotProbed},
	}
	for _, tt := range tests {
		if got := Classify(tt.get, tt.put); got != tt.want {
			t.Errorf("%s: Classify = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestParseNetNSLink(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"net:[4026531840]", 4026531840, true},
		{"net:[1]", 1, true},
		{"mnt:[4026531840]", 0, false},
		{"net:[4026531840", 0, false},
		{"net:[]", 0, false},
		{"net:[-3]", 0, false},
		{"net:[0]", 0, false},
		{"4026531840", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseNetNSLink(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseNetNSLink(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// proc is one process of a fixture /proc.
type proc struct {
	pid    int
	cgroup string
	netns  string // the ns/net link's target; empty for none (a kernel thread's)
	comm   string
}

func writeProc(t *testing.T, root string, procs []proc) {
	t.Helper()
	for _, p := range procs {
		dir := filepath.Join(root, "proc", strconv.Itoa(p.pid))
		if err := os.MkdirAll(filepath.Join(dir, "ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup"), []byte(p.cgroup), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "comm"), []byte(p.comm+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if p.netns != "" {
			if err := os.Symlink(p.netns, filepath.Join(dir, "ns", "net")); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Entries that are no process.
	for _, name := range []string{"self", "net", "sys"} {
		if err := os.MkdirAll(filepath.Join(root, "proc", name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestScan(t *testing.T) {
	root := t.TempDir()
	const pod = "6b1e0f4c-9a3d-4e2b-8c1f-0d2e3f4a5b6c"
	podCgroup := func(id string) string {
		return "0::/kubepods.slice/kubepods-pod6b1e0f4c_9a3d_4e2b_8c1f_0d2e3f4a5b6c.slice/cri-containerd-" + id + ".scope\n"
	}
	writeProc(t, root, []proc{
		{1, "0::/init.scope\n", "net:[100]", "systemd"},
		{700, "0::/system.slice/dockerd.service\n", "net:[100]", "dockerd"},
		// A docker container with two processes: the lower PID is listed.
		{1210, "0::/system.slice/docker-" + id1 + ".scope\n", "net:[200]", "sleep"},
		{1200, "0::/system.slice/docker-" + id1 + ".scope\n", "net:[200]", "nginx"},
		// A pod: the pause container and an app share one namespace.
		{1300, podCgroup(id2), "net:[300]", "pause"},
		{1301, podCgroup(id1), "net:[300]", "app"},
		// A host-network container shares the host's namespace: left out.
		{1400, "0::/system.slice/docker-" + id2 + ".scope\n", "net:[100]", "node-exporter"},
		// A namespace without a container cgroup (a test bed, a VPN): no container.
		{1500, "0::/user.slice/user-0.slice/session-1.scope\n", "net:[500]", "sleep"},
		// A kernel thread has no namespace link; a process whose link is unreadable.
		{2, "0::/\n", "", "kthreadd"},
		{1600, "0::/docker/" + id2 + "\n", "", "gone"},
	})
	got, err := Scan(context.Background(), paths.New(root), 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []Container{
		{ID: id1, Runtime: RuntimeDocker, PID: 1200, Command: "nginx", NetNS: 200},
		{ID: id2, Runtime: RuntimeCRIContainerd, Pod: pod, PID: 1300, Command: "pause", NetNS: 300},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Scan (-want +got):\n%s", d)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Scan(ctx, paths.New(root), 100); err == nil {
		t.Error("Scan with an ended context succeeded")
	}
	if got, err := Scan(context.Background(), paths.New(filepath.Join(root, "missing")), 0); err != nil || len(got) > 0 {
		t.Errorf("Scan of a tree without /proc = %v, %v; want no containers", got, err)
	}
}

// TestGatherFromTree: a tree under --root is read, never entered: its containers are
// listed, not probed.
func TestGatherFromTree(t *testing.T) {
	for _, n := range []int{0, 1, 6} {
		root := t.TempDir()
		procs := []proc{{1, "0::/init.scope\n", "net:[100]", "systemd"}}
		for i := range n {
			procs = append(procs, proc{1000 + i, "0::/docker/" + id1[:63] + strconv.Itoa(i) + "\n", "net:[" + strconv.Itoa(200+i) + "]", "sleep"})
		}
		writeProc(t, root, procs)
		got, err := Gather(context.Background(), Config{Paths: paths.New(root), IMDS: imds.Config{Endpoint: "http://127.0.0.1:1"}})
		if err != nil {
			t.Fatal(err)
		}
		if got.Present != (n > 0) || got.Found != n || len(got.List) != n || got.MaxProbed != DefaultMaxProbed {
			t.Fatalf("%d containers: Gather = %+v; want %d found and listed, max_probed %d", n, got, n, DefaultMaxProbed)
		}
		for i, c := range got.List {
			if c.Fingerprint != FingerprintNotProbed || c.Error == "" || c.PID != 1000+i {
				t.Errorf("container %d: %+v; want PID %d, not probed, with a reason", i, c, 1000+i)
			}
		}
	}
	// A /proc that cannot be listed fails the probe.
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "proc"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Gather(context.Background(), Config{Paths: paths.New(root)}); err == nil {
		t.Error("Gather with /proc a plain file succeeded")
	}
}

// TestReprobeInOwnNamespace: the live path (open the namespace, check it is the one
// scanned, enter it on a thread of its own, send the two requests, classify) run against
// local servers from this process's own namespace, which setns may enter again. A server
// that never answers the PUT gives the hop-limit fingerprint.
func TestReprobeInOwnNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("setns needs CAP_SYS_ADMIN")
	}
	hang := make(chan struct{})
	serve := func(answerPUT bool) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == http.MethodGet && r.URL.Path == "/latest/meta-data/":
				http.Error(w, "", http.StatusUnauthorized)
			case r.Method == http.MethodPut && answerPUT:
				w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", "1")
				_, _ = w.Write([]byte("AQAEAtoken"))
			case r.Method == http.MethodPut:
				<-hang
			}
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	healthy, hanging := serve(true), serve(false)
	t.Cleanup(func() { close(hang) }) // before the servers close (cleanups run last first)
	self, err := netnsInode(os.Readlink, "/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	me := Container{ID: id1, Runtime: RuntimeDocker, PID: os.Getpid(), Command: "containers.test", NetNS: self}
	reused := me
	reused.NetNS = self + 1
	fast := imds.Timeouts{Connect: 250 * time.Millisecond, Header: 200 * time.Millisecond}
	tests := []struct {
		name     string
		endpoint string
		list     []Container
		want     []string // fingerprints
		errorHas []string
	}{
		{"served", healthy, []Container{me}, []string{FingerprintOK}, []string{""}},
		{"token PUT unanswered", hanging, []Container{me}, []string{FingerprintHopLimit}, []string{"token PUT"}},
		{"nothing listens", "http://127.0.0.1:1", []Container{me}, []string{FingerprintUnreachable}, []string{"connection refused"}},
		{"the PID is in another namespace now", healthy, []Container{reused}, []string{FingerprintNotProbed}, []string{"reused?"}},
		{"over the bound", healthy, []Container{me, me, me}, []string{FingerprintOK, FingerprintOK, FingerprintNotProbed}, []string{"", "", "over the bound of 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Paths: paths.New("/"), MaxProbed: 2,
				IMDS: imds.Config{Endpoint: tt.endpoint, Timeouts: fast, Budget: rate.NewLimiter(rate.Inf, 0)}}
			got := Reprobe(context.Background(), cfg, tt.list)
			if len(got) != len(tt.want) {
				t.Fatalf("%d containers back, want %d", len(got), len(tt.want))
			}
			for i, c := range got {
				if c.Fingerprint != tt.want[i] || !strings.Contains(c.Error, tt.errorHas[i]) || (tt.errorHas[i] == "") != (c.Error == "") {
					t.Errorf("container %d: fingerprint %q, error %q; want %q, an error with %q", i, c.Fingerprint, c.Error, tt.want[i], tt.errorHas[i])
				}
				if c.ID != tt.list[i].ID || c.PID != tt.list[i].PID || c.NetNS != tt.list[i].NetNS {
					t.Errorf("container %d came back as %+v", i, c)
				}
			}
			if got[0].Fingerprint == FingerprintOK && (got[0].GetStatus != 401 || got[0].PutStatus != 200 || got[0].PutTimedOut) {
				t.Errorf("served: %+v; want GET 401, PUT 200", got[0])
			}
		})
	}
}

// TestGatherLive: on the running system (no container here is probed but through
// loopback, where nothing listens) Gather always fills its section.
func TestGatherLive(t *testing.T) {
	got, err := Gather(context.Background(), Config{Paths: paths.New("/"), IMDS: imds.Config{Endpoint: "http://127.0.0.1:1"}})
	if err != nil || got == nil {
		t.Fatalf("Gather = %v, %v; want a section", got, err)
	}
	if got.Present != (got.Found > 0) || got.MaxProbed != DefaultMaxProbed {
		t.Errorf("Gather = %+v", got)
	}
	for _, c := range got.List {
		if c.Fingerprint == "" {
			t.Errorf("container %+v has no fingerprint", c)
		}
	}
}

func TestBehindVethNone(t *testing.T) {
	kept, left, err := behindVeth(nil)
	if kept != nil || left != 0 || err != nil {
		t.Errorf("behindVeth(nil) = %v, %d, %v; want nothing", kept, left, err)
	}
}
