// Package containers finds the running containers (Docker, containerd, CRI pods, Podman)
// that have a network namespace of their own one veth hop from this one, and measures from
// inside each what IMDS answers it: a tokenless GET and a token PUT. A GET answered while
// the PUT times out is the fingerprint of a hop limit too low (HttpPutResponseHopLimit 1):
// IMDS sends its token replies with that IP TTL, and the host's forwarding hop spends it.
//
// Containers are found through /proc: a process whose cgroup is a container runtime's
// (ParseCgroup) and whose /proc/PID/ns/net is not this process's own. Namespaces without a
// container cgroup (test beds, VPNs, ip netns) are not containers; nor are namespaces no
// veth of this one leads to (rootless Podman's, whose traffic leaves through a user-space
// stack on this host and so loses no hop).
package containers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/imdsmend/imdsmend/facts/imds"
	"github.com/imdsmend/imdsmend/internal/paths"
)

// Containers is what the probe found.
type Containers struct {
	Present     bool        `cty:"present" json:"present" doc:"Running containers with a network namespace of their own, one veth hop from this one, were found."`
	Found       int         `cty:"found" json:"found" doc:"How many such containers (distinct network namespaces) were found; only the first max_probed are probed."`
	Unconnected int         `cty:"unconnected" json:"unconnected" doc:"Container network namespaces left out because no veth of this namespace leads to them (their traffic does not take a hop through this one)."`
	MaxProbed   int         `cty:"max_probed" json:"max_probed" doc:"The bound on how many containers are probed in one run."`
	List        []Container `cty:"list" json:"list" doc:"The containers, by PID (the lowest of each network namespace)."`
}

// Container is one container's network namespace and what IMDS answered inside it.
type Container struct {
	ID           string  `cty:"id" json:"id" doc:"The container ID (64 hex digits) from the cgroup of its lowest PID in the namespace."`
	Runtime      string  `cty:"runtime" json:"runtime" doc:"docker, containerd, cri-containerd, cri-o, podman, or kubernetes (a pod's container whose runtime the cgroup does not name)."`
	Pod          string  `cty:"pod" json:"pod" doc:"The Kubernetes pod UID; empty outside a pod."`
	PID          int     `cty:"pid" json:"pid" doc:"The process whose network namespace was entered."`
	Command      string  `cty:"command" json:"command" doc:"That process's name (/proc/PID/comm)."`
	NetNS        int64   `cty:"netns" json:"netns" doc:"The network namespace's inode number (as in net:[N])."`
	GetStatus    int     `cty:"get_status" json:"get_status" doc:"HTTP status of the tokenless GET /latest/meta-data/ (401 when tokens are required, 200 when optional); 0 for no reply."`
	GetLatencyMS float64 `cty:"get_latency_ms" json:"get_latency_ms" doc:"How long the GET took, in milliseconds."`
	PutStatus    int     `cty:"put_status" json:"put_status" doc:"HTTP status of the token PUT; 0 for no reply."`
	PutTimedOut  bool    `cty:"put_timed_out" json:"put_timed_out" doc:"The token PUT went out and no reply came within the time bound."`
	PutLatencyMS float64 `cty:"put_latency_ms" json:"put_latency_ms" doc:"How long the PUT took (or was waited for), in milliseconds."`
	Fingerprint  string  `cty:"fingerprint" json:"fingerprint" doc:"What the two requests say together: ok, hop_limit_too_low (GET answered, PUT timed out), unreachable (no reply to the GET), other, or not_probed (over max_probed, no request budget left, the namespace could not be entered, or a --root tree)."`
	Error        string  `cty:"error" json:"error" doc:"Why a request failed or the container was not probed; empty when both answered."`
}

// The fingerprints.
const (
	FingerprintOK          = "ok"
	FingerprintHopLimit    = "hop_limit_too_low"
	FingerprintUnreachable = "unreachable"
	FingerprintOther       = "other"
	FingerprintNotProbed   = "not_probed"
)

// Config says where to look and how to reach IMDS.
type Config struct {
	Paths paths.Paths
	// IMDS is the endpoint, timeouts and request budget, as the host's own probe has them.
	IMDS imds.Config
	// MaxProbed bounds the containers probed (two requests each); 0 takes DefaultMaxProbed.
	MaxProbed int
}

// DefaultMaxProbed keeps a run's container requests (two each) well inside the process's
// IMDS request budget (imds.BudgetBurst) beside the host's own probe.
const DefaultMaxProbed = 4

// maxListed bounds the list: the found count says how many more there were.
const maxListed = 64

func (c Config) maxProbed() int {
	if c.MaxProbed > 0 {
		return c.MaxProbed
	}
	return DefaultMaxProbed
}

// live says the probe reads the running system: only then are namespaces entered.
func (c Config) live() bool { return c.Paths.Root == "" || c.Paths.Root == "/" }

// Gather finds the containers and probes the first MaxProbed of them concurrently, within
// ctx. A failure to read /proc fails the probe; one container's failure is in its Error.
func Gather(ctx context.Context, cfg Config) (*Containers, error) {
	var self int64
	if cfg.live() {
		var err error
		// The calling thread's: a caller may have entered another namespace on a locked
		// thread to look from there.
		if self, err = netnsInode(os.Readlink, "/proc/thread-self/ns/net"); err != nil {
			return nil, err
		}
	}
	found, err := Scan(ctx, cfg.Paths, self)
	if err != nil {
		return nil, err
	}
	res := &Containers{MaxProbed: cfg.maxProbed()}
	if cfg.live() {
		var unconnected int
		if found, unconnected, err = behindVeth(found); err != nil {
			return nil, err
		}
		res.Unconnected = unconnected
	}
	res.Found, res.Present = len(found), len(found) > 0
	if len(found) > maxListed {
		found = found[:maxListed]
	}
	res.List = Reprobe(ctx, cfg, found)
	return res, nil
}

// Reprobe measures the fingerprint again inside each container's network namespace, all
// at once, and returns the containers with the new answers (the rest of each unchanged).
// It is what a fixer that changed the metadata options calls to prove the containers are
// served again. At most cfg.MaxProbed are probed; the others come back not_probed. A
// container whose process is gone, or now in another namespace, is not probed.
func Reprobe(ctx context.Context, cfg Config, list []Container) []Container {
	out := slices.Clone(list)
	var wg sync.WaitGroup
	for i := range out {
		c := &out[i]
		*c = Container{ID: c.ID, Runtime: c.Runtime, Pod: c.Pod, PID: c.PID, Command: c.Command, NetNS: c.NetNS}
		switch {
		case i >= cfg.maxProbed():
			c.Fingerprint, c.Error = FingerprintNotProbed, fmt.Sprintf("not probed: over the bound of %d containers a run probes", cfg.maxProbed())
		case !cfg.live():
			c.Fingerprint, c.Error = FingerprintNotProbed, "not probed: the system is read from a tree (--root), not entered"
		default:
			wg.Go(func() { probe(ctx, cfg.IMDS, c) })
		}
	}
	wg.Wait()
	return out
}

// Scan lists the processes in a container runtime's cgroup whose network namespace is
// not self's (0: none left out), one per namespace: the lowest PID. It reads /proc under
// p's root (a tree without one has no containers) and stops when ctx ends.
func Scan(ctx context.Context, p paths.Paths, self int64) ([]Container, error) {
	proc := p.File(paths.ProcDir)
	entries, err := os.ReadDir(proc)
	if errors.Is(err, fs.ErrNotExist) && !(p.Root == "" || p.Root == "/") {
		return nil, nil // a tree without /proc (an image, a test tree) runs no containers
	}
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	seen := map[int64]bool{}
	var out []Container
	for _, pid := range pids {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("scan processes for containers: %w", err)
		}
		dir := filepath.Join(proc, strconv.Itoa(pid))
		cg, err := os.ReadFile(filepath.Join(dir, "cgroup"))
		if err != nil {
			continue // gone, or a kernel thread's
		}
		c, ok := ParseCgroup(cg)
		if !ok {
			continue
		}
		ino, err := netnsInode(os.Readlink, filepath.Join(dir, "ns", "net"))
		if err != nil || ino == self || seen[ino] {
			continue
		}
		seen[ino] = true
		comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
		out = append(out, Container{ID: c.ID, Runtime: c.Runtime, Pod: c.Pod, PID: pid,
			Command: strings.TrimSpace(string(comm)), NetNS: ino})
	}
	return out, nil
}

// netnsInode reads a namespace link ("net:[4026531840]") and returns its inode.
func netnsInode(readlink func(string) (string, error), path string) (int64, error) {
	target, err := readlink(path)
	if err != nil {
		return 0, fmt.Errorf("read the network namespace: %w", err)
	}
	return ParseNetNSLink(target)
}

// ParseNetNSLink parses a network namespace link's target, "net:[N]", into N.
func ParseNetNSLink(target string) (int64, error) {
	num, pre := strings.CutPrefix(target, "net:[")
	num, post := strings.CutSuffix(num, "]")
	n, err := strconv.ParseInt(num, 10, 64)
	if !pre || !post || err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is no network namespace link (net:[N])", target)
	}
	return n, nil
}
