package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/time/rate"

	"github.com/imdsmend/imdsmend/facts/containers"
	"github.com/imdsmend/imdsmend/facts/imds"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/tests/ec2sim/ec2"
	"github.com/imdsmend/imdsmend/tests/harness"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
)

// TestHopLimitFromContainers: imdsmend in the Host enters the network namespace of a
// container one forwarded hop behind it (a process in a Docker scope's cgroup) and sees
// the hop limit's fingerprint there. With hop limit 1 the container's token PUT gets no
// answer while its tokenless GET gets 401, and check reports hop_limit_too_low naming the
// container; with hop limit 2 nothing is found. The Host's own probe is healthy in both.
// A second namespace one hop behind the Host, whose process has no container cgroup, is no
// container; a Docker-scoped process in a namespace no veth of the Host leads to is left
// out (unconnected).
func TestHopLimitFromContainers(t *testing.T) {
	tests := []struct {
		hopLimit    int
		findings    []string
		fingerprint string
	}{
		{1, []string{"hop_limit_too_low"}, containers.FingerprintHopLimit},
		{2, []string{}, containers.FingerprintOK},
	}
	for _, tt := range tests {
		t.Run("hop limit "+strconv.Itoa(tt.hopLimit), func(t *testing.T) {
			ctx := testContext(t)
			hop := newHop(t, 2)
			if _, err := harness.StartSim(ctx, hop.IMDS, bins.Imdssim, sim.FaultOK, "--hop-limit", strconv.Itoa(tt.hopLimit)); err != nil {
				t.Fatal(err)
			}
			docker, plain := startSleeper(t, hop.Containers[0]), startSleeper(t, hop.Containers[1])
			id := inDockerScope(t, hop.Containers[0], docker)
			// A container no veth of the Host leads to takes no hop through it.
			elsewhere := newNamespace(t)
			inDockerScope(t, elsewhere, startSleeper(t, elsewhere))

			r := newRun(t, hop.Host)
			rep, res := r.report(ctx, "check")
			if got := findingRules(rep); !slices.Equal(got, tt.findings) || res.ExitCode != map[bool]int{true: report.ExitHealthy, false: report.ExitFindings}[len(tt.findings) == 0] {
				t.Fatalf("check: exit %d, findings %v; want %v\n%s", res.ExitCode, got, tt.findings, res.Stdout)
			}
			if rep.IMDS == nil || rep.IMDS.Class != "ok" || !rep.IMDS.Reachable {
				t.Errorf("the Host's own probe: %+v; want ok", rep.IMDS)
			}

			f := factsIn(ctx, t, hop.Host, r, nil)
			c := f.Containers
			if c == nil || !c.Present || c.Found != 1 || len(c.List) != 1 || c.Unconnected < 1 {
				t.Fatalf("facts.containers %+v (probe %+v); want the one container", c, f.Probes["containers"])
			}
			got := c.List[0]
			if got.ID != id || got.Runtime != containers.RuntimeDocker || got.PID != docker || got.Fingerprint != tt.fingerprint || got.GetStatus != 401 {
				t.Errorf("container %+v; want docker %s, PID %d, GET 401, fingerprint %s", got, id, docker, tt.fingerprint)
			}
			if got.PID == plain {
				t.Errorf("PID %d, without a container cgroup, was taken for a container", plain)
			}
			if tt.hopLimit == 1 {
				if !got.PutTimedOut || got.PutStatus != 0 {
					t.Errorf("container's PUT: status %d, timed out %v; want no answer", got.PutStatus, got.PutTimedOut)
				}
				var ev struct{ Containers []containers.Container }
				if err := json.Unmarshal(rep.Findings[0].Evidence, &ev); err != nil || len(ev.Containers) != 1 || ev.Containers[0].ID != id {
					t.Errorf("evidence %s (%v); want container %s", rep.Findings[0].Evidence, err, id)
				}
				if s := rep.Findings[0].Summary; !strings.Contains(s, "docker "+id[:12]) || !strings.Contains(s, "GET 401") {
					t.Errorf("summary %q names neither the container nor what it saw", s)
				}
			} else if got.PutStatus != 200 || got.PutTimedOut {
				t.Errorf("container's PUT: status %d, timed out %v; want 200", got.PutStatus, got.PutTimedOut)
			}
		})
	}
}

// startSleeper starts a long-running process in ns and returns its PID; it ends with ns.
func startSleeper(t testing.TB, ns *harness.Namespace) int {
	t.Helper()
	p, err := ns.Start("sleep", "infinity")
	if err != nil {
		t.Fatal(err)
	}
	return p.PID()
}

// inDockerScope moves pid (a process of ns) into a cgroup named as Docker's systemd driver
// names a container's, system.slice/docker-<64 hex>.scope in the unified hierarchy, and
// returns the container ID. The cgroup is removed once ns has closed and its processes
// have ended; system.slice too, when this created it and nothing else uses it.
func inDockerScope(t testing.TB, ns *harness.Namespace, pid int) string {
	t.Helper()
	root := cgroup2Mount(t)
	var b [32]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	slice := filepath.Join(root, "system.slice")
	made := false
	if err := os.Mkdir(slice, 0o755); err == nil {
		made = true
	} else if !errors.Is(err, fs.ErrExist) {
		t.Fatal(err)
	}
	scope := filepath.Join(slice, "docker-"+id+".scope")
	remove := func() {
		if err := os.Remove(scope); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("remove the test's cgroup: %v", err)
		}
		if made {
			_ = os.Remove(slice) // fails while another test's cgroup is in it
		}
	}
	if err := os.Mkdir(scope, 0o755); err != nil {
		remove()
		t.Fatal(err)
	}
	ns.OnClose(remove)
	if err := os.WriteFile(filepath.Join(scope, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		t.Fatalf("move PID %d into %s: %v", pid, scope, err)
	}
	return id
}

// cgroup2Mount is where the unified cgroup hierarchy is mounted: /sys/fs/cgroup on a
// cgroup v2 host, /sys/fs/cgroup/unified on a hybrid one.
func cgroup2Mount(t testing.TB) string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID parent major:minor root mountpoint options [optional...] - fstype source opts
		fields := strings.Fields(sc.Text())
		if i := slices.Index(fields, "-"); i > 4 && i+1 < len(fields) && fields[i+1] == "cgroup2" {
			return fields[4]
		}
	}
	t.Fatal("no cgroup2 hierarchy mounted: a container's cgroup cannot be made")
	return ""
}

// TestContainersReprobe: containers.Reprobe, which a fixer calls after changing the
// metadata options, measures again inside the same containers: the hop-limit fingerprint
// Gather saw at hop limit 1 is gone once the instance's hop limit is 2. It runs in this
// process, from a thread in the Host namespace.
func TestContainersReprobe(t *testing.T) {
	ctx := testContext(t)
	hop := newHop(t, 1)
	s, err := harness.StartSim(ctx, hop.IMDS, bins.Imdssim, sim.FaultOK, "--hop-limit", "1")
	if err != nil {
		t.Fatal(err)
	}
	pid := startSleeper(t, hop.Containers[0])
	id := inDockerScope(t, hop.Containers[0], pid)
	cfg := containers.Config{Paths: paths.New("/"), IMDS: imds.Config{Endpoint: "http://" + harness.IMDSAddr, Budget: rate.NewLimiter(rate.Inf, 0)}}

	var found *containers.Containers
	var before, after []containers.Container
	err = hop.Host.Do(func() (err error) {
		if found, err = containers.Gather(ctx, cfg); err != nil {
			return err
		}
		before = containers.Reprobe(ctx, cfg, found.List)
		if err := ec2.NewIMDSSimAdminClient(s.Socket).SetOptions(ctx, sim.InstanceID, ec2.Options{HopLimit: 2}); err != nil {
			return err
		}
		after = containers.Reprobe(ctx, cfg, found.List)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found.List) != 1 || found.List[0].ID != id || found.List[0].PID != pid {
		t.Fatalf("Gather found %+v; want container %s (PID %d)", found.List, id, pid)
	}
	var got []string
	for _, l := range [][]containers.Container{found.List, before, after} {
		got = append(got, l[0].Fingerprint)
	}
	want := []string{containers.FingerprintHopLimit, containers.FingerprintHopLimit, containers.FingerprintOK}
	if !slices.Equal(got, want) {
		t.Errorf("fingerprints of Gather, Reprobe, Reprobe after hop limit 2: %q, want %q (last %+v)", got, want, after[0])
	}
	if after[0].ID != id || after[0].PID != pid || after[0].PutStatus != 200 || after[0].Error != "" {
		t.Errorf("after hop limit 2: %+v; want the same container, its PUT answered 200, no error", after[0])
	}
}
