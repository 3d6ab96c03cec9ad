package containers

import (
	"strings"
	"testing"
)

const (
	id1 = "4f1c2b3a4d5e6f708192a3b4c5d6e7f80123456789abcdef0123456789abcdef"
	id2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// v1 is a cgroup v1 host's /proc/PID/cgroup with every hierarchy at path.
func v1(path string) string {
	var b strings.Builder
	for i, h := range []string{"cpu,cpuacct", "memory", "pids", "name=systemd"} {
		b.WriteString(strings.Join([]string{string(rune('9' - i)), h, path}, ":") + "\n")
	}
	return b.String()
}

func TestParseCgroup(t *testing.T) {
	tests := []struct {
		name, cgroup string
		want         Cgroup
		ok           bool
	}{
		{"docker, systemd driver (v2)", "0::/system.slice/docker-" + id1 + ".scope\n", Cgroup{Runtime: RuntimeDocker, ID: id1}, true},
		{"docker, cgroupfs driver (v2)", "0::/docker/" + id1 + "\n", Cgroup{Runtime: RuntimeDocker, ID: id1}, true},
		{"docker, cgroupfs driver (v1)", v1("/docker/" + id1), Cgroup{Runtime: RuntimeDocker, ID: id1}, true},
		{"docker on a hybrid host: the unified path is the root", "0::/\n" + v1("/system.slice/docker-"+id1+".scope"), Cgroup{Runtime: RuntimeDocker, ID: id1}, true},
		{"docker in docker: the innermost container", "0::/docker/" + id2 + "/docker/" + id1 + "\n", Cgroup{Runtime: RuntimeDocker, ID: id1}, true},
		{"containerd (ctr, default namespace)", "0::/default/" + id1 + "\n", Cgroup{Runtime: RuntimeContainerd, ID: id1}, true},
		{"containerd (nerdctl, systemd driver)", "0::/system.slice/nerdctl-" + id1 + ".scope\n", Cgroup{Runtime: RuntimeContainerd, ID: id1}, true},
		{"EKS pod, systemd driver", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6b1e0f4c_9a3d_4e2b_8c1f_0d2e3f4a5b6c.slice/cri-containerd-" + id1 + ".scope\n",
			Cgroup{Runtime: RuntimeCRIContainerd, ID: id1, Pod: "6b1e0f4c-9a3d-4e2b-8c1f-0d2e3f4a5b6c"}, true},
		{"guaranteed pod, systemd driver", "0::/kubepods.slice/kubepods-pod6b1e0f4c_9a3d_4e2b_8c1f_0d2e3f4a5b6c.slice/cri-containerd-" + id1 + ".scope\n",
			Cgroup{Runtime: RuntimeCRIContainerd, ID: id1, Pod: "6b1e0f4c-9a3d-4e2b-8c1f-0d2e3f4a5b6c"}, true},
		{"pod, cgroupfs driver (v1)", v1("/kubepods/besteffort/pod6b1e0f4c-9a3d-4e2b-8c1f-0d2e3f4a5b6c/" + id1),
			Cgroup{Runtime: RuntimeKubernetes, ID: id1, Pod: "6b1e0f4c-9a3d-4e2b-8c1f-0d2e3f4a5b6c"}, true},
		{"cri-o pod", "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0d2e3f4a_5b6c_4e2b_8c1f_6b1e0f4c9a3d.slice/crio-" + id1 + ".scope\n",
			Cgroup{Runtime: RuntimeCRIO, ID: id1, Pod: "0d2e3f4a-5b6c-4e2b-8c1f-6b1e0f4c9a3d"}, true},
		{"podman, systemd driver", "0::/machine.slice/libpod-" + id1 + ".scope\n", Cgroup{Runtime: RuntimePodman, ID: id1}, true},
		{"podman, a process inside the container's own cgroup", "0::/machine.slice/libpod-" + id1 + ".scope/container\n", Cgroup{Runtime: RuntimePodman, ID: id1}, true},
		{"podman, cgroupfs driver", "0::/libpod_parent/" + id1 + "\n", Cgroup{Runtime: RuntimePodman, ID: id1}, true},

		{"the unified hierarchy before the v1 ones", v1("/docker/"+id2) + "0::/system.slice/docker-" + id1 + ".scope\n", Cgroup{Runtime: RuntimeDocker, ID: id1}, true},

		{"a pod-named directory outside kubepods is no pod", "0::/pod6b1e0f4c-9a3d-4e2b-8c1f-0d2e3f4a5b6c/" + id1 + "\n", Cgroup{}, false},
		{"a 64-hex directory right under a QoS class is no container", "0::/kubepods/besteffort/" + id1 + "\n", Cgroup{}, false},
		{"a colon in the path", "0::/odd:name/docker/" + id1 + "\n", Cgroup{Runtime: RuntimeDocker, ID: id1}, true},
		{"podman's conmon is no container", "0::/machine.slice/libpod-conmon-" + id1 + ".scope\n", Cgroup{}, false},
		{"cri-o's conmon is no container", "0::/kubepods.slice/crio-conmon-" + id1 + ".scope\n", Cgroup{}, false},
		{"the docker daemon is no container", "0::/system.slice/docker.service\n", Cgroup{}, false},
		{"containerd's shim is no container", "0::/system.slice/containerd.service\n", Cgroup{}, false},
		{"a login session", "0::/user.slice/user-1000.slice/session-3.scope\n", Cgroup{}, false},
		{"the root cgroup", "0::/\n", Cgroup{}, false},
		{"a test bed's process (no runtime)", "0::/system.slice/imdsmend-test.scope\n", Cgroup{}, false},
		{"a short ID", "0::/system.slice/docker-4f1c2b3a4d5e.scope\n", Cgroup{}, false},
		{"an upper-case ID", "0::/docker/" + strings.ToUpper(id1) + "\n", Cgroup{}, false},
		{"a 64-hex directory under an unknown parent", "0::/custom/" + id1 + "\n", Cgroup{}, false},
		{"a 64-hex directory at the root", "0::/" + id1 + "\n", Cgroup{}, false},
		{"an unknown scope prefix", "0::/system.slice/lxc-" + id1 + ".scope\n", Cgroup{}, false},
		{"empty", "", Cgroup{}, false},
		{"garbage", "no colons here\n::\n", Cgroup{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseCgroup([]byte(tt.cgroup))
			if got != tt.want || ok != tt.ok {
				t.Errorf("ParseCgroup = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParseCgroup(f *testing.F) {
	f.Add("0::/system.slice/docker-" + id1 + ".scope\n")
	f.Add(v1("/kubepods/besteffort/pod6b1e0f4c-9a3d-4e2b-8c1f-0d2e3f4a5b6c/" + id1))
	f.Add("0::/kubepods.slice/kubepods-pod.slice/cri-containerd-" + id1 + ".scope\n")
	f.Add("0::/kubepods/pod/" + id1)
	f.Add("0::/machine.slice/libpod-conmon-" + id1 + ".scope\n")
	f.Add("1:a:b:c\n0::\n")
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := ParseCgroup([]byte(s))
		if !ok {
			if c != (Cgroup{}) {
				t.Errorf("not a container, yet %+v", c)
			}
			return
		}
		if !containerID(c.ID) || !strings.Contains(s, c.ID) {
			t.Errorf("ID %q is no container ID of the input", c.ID)
		}
		switch c.Runtime {
		case RuntimeDocker, RuntimeContainerd, RuntimeCRIContainerd, RuntimeCRIO, RuntimePodman, RuntimeKubernetes:
		default:
			t.Errorf("runtime %q is none of the known ones", c.Runtime)
		}
		if strings.Contains(c.Pod, "/") || strings.Contains(c.Pod, "_") {
			t.Errorf("pod UID %q holds a path separator or an underscore", c.Pod)
		}
	})
}
