package containers

import (
	"bytes"
	"strings"
)

// The container runtimes a cgroup path is recognised by.
const (
	RuntimeDocker        = "docker"
	RuntimeContainerd    = "containerd"
	RuntimeCRIContainerd = "cri-containerd"
	RuntimeCRIO          = "cri-o"
	RuntimePodman        = "podman"
	// A Kubernetes pod's container whose runtime its cgroup does not name (the kubelet's
	// cgroupfs driver names only the pod and the container ID).
	RuntimeKubernetes = "kubernetes"
)

// scopePrefixes are the runtimes that, under the systemd cgroup driver, put each
// container in a scope "<prefix>-<64 hex ID>.scope".
var scopePrefixes = map[string]string{
	"docker":         RuntimeDocker,
	"cri-containerd": RuntimeCRIContainerd,
	"nerdctl":        RuntimeContainerd,
	"crio":           RuntimeCRIO,
	"libpod":         RuntimePodman,
}

// parentRuntimes are the runtimes that, under the cgroupfs driver, put each container in
// a directory named by its 64 hex ID under one of theirs (containerd's by its namespace).
var parentRuntimes = map[string]string{
	"docker":        RuntimeDocker,
	"libpod_parent": RuntimePodman,
	"default":       RuntimeContainerd,
	"k8s.io":        RuntimeContainerd,
	"moby":          RuntimeContainerd,
}

// Cgroup is the container a process's cgroup names.
type Cgroup struct {
	Runtime string // one of the Runtime constants
	ID      string // the container ID, 64 hex digits
	Pod     string // the Kubernetes pod UID; empty outside a pod
}

// ParseCgroup reads /proc/PID/cgroup: the container a process runs in, if its cgroup is a
// container runtime's. The unified (v2, "0::") hierarchy is read first, then each v1 one
// (a hybrid host may keep containers in the v1 hierarchies only). The conmon and pause
// helpers' scopes ("crio-conmon-ID.scope", "libpod-conmon-ID.scope") are not containers.
func ParseCgroup(cgroup []byte) (Cgroup, bool) {
	var unified string
	var others []string
	for line := range bytes.Lines(cgroup) {
		f := strings.SplitN(strings.TrimSpace(string(line)), ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "" {
			unified = f[2]
		} else {
			others = append(others, f[2])
		}
	}
	for _, path := range append([]string{unified}, others...) {
		if c, ok := parseCgroupPath(path); ok {
			return c, true
		}
	}
	return Cgroup{}, false
}

// parseCgroupPath finds the innermost container in one cgroup path.
func parseCgroupPath(path string) (Cgroup, bool) {
	parts := strings.Split(path, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		var c Cgroup
		if name, ok := strings.CutSuffix(parts[i], ".scope"); ok {
			prefix, id, ok := cutLast(name, "-")
			if !ok || !containerID(id) || scopePrefixes[prefix] == "" {
				continue
			}
			c = Cgroup{Runtime: scopePrefixes[prefix], ID: id}
		} else if containerID(parts[i]) && i > 0 {
			rt := parentRuntimes[parts[i-1]]
			if strings.HasPrefix(parts[i-1], "pod") && underKubepods(parts[:i]) {
				rt = RuntimeKubernetes
			}
			if rt == "" {
				continue
			}
			c = Cgroup{Runtime: rt, ID: parts[i]}
		} else {
			continue
		}
		c.Pod = podUID(parts[:i])
		return c, true
	}
	return Cgroup{}, false
}

// cutLast splits s around the last sep.
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// containerID says s is a container ID: 64 lower-case hex digits.
func containerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func underKubepods(parts []string) bool {
	for _, p := range parts {
		if p == "kubepods" || strings.HasPrefix(p, "kubepods.") || strings.HasPrefix(p, "kubepods-") {
			return true
		}
	}
	return false
}

// podUID finds the pod in the cgroup path above a container: "pod<UID>" (cgroupfs) or
// "kubepods[-<class>]-pod<UID with _ for ->.slice" (systemd), under kubepods.
func podUID(parts []string) string {
	if !underKubepods(parts) {
		return ""
	}
	for i := len(parts) - 1; i >= 0; i-- {
		p := strings.TrimSuffix(parts[i], ".slice")
		if j := strings.LastIndex(p, "pod"); j >= 0 && (j == 0 || p[j-1] == '-') {
			if uid := strings.ReplaceAll(p[j+3:], "_", "-"); uid != "" {
				return uid
			}
		}
	}
	return ""
}
