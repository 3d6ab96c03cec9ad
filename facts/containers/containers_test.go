package containers

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

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
	root := t.TempDir()
	var procs []proc
	for i := range 6 {
		procs = append(procs, proc{1000 + i, "0::/docker/" + id1[:63] + strconv.Itoa(i) + "\n", "net:[" + strconv.Itoa(200+i) + "]", "sleep"})
	}
	writeProc(t, root, procs)
	got, err := Gather(context.Background(), Config{Paths: paths.New(root), IMDS: imds.Config{Endpoint: "http://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Present || got.Found != 6 || len(got.List) != 6 || got.MaxProbed != DefaultMaxProbed {
		t.Fatalf("Gather = %+v; want 6 found and listed, max_probed %d", got, DefaultMaxProbed)
	}
	for i, c := range got.List {
		if c.Fingerprint != FingerprintNotProbed || c.Error == "" || c.PID != 1000+i {
			t.Errorf("container %d: %+v; want PID %d, not probed, with a reason", i, c, 1000+i)
		}
	}
}
