package facts

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Privilege is a capability a probe needs beyond an ordinary user's rights. A process
// without it does not run the probe: its section stays null, so the rules that read it are
// unknown, for a reason that names the capability instead of the tools' own errors.
type Privilege struct {
	Probe      string // the probe that needs it
	Capability string // as capabilities(7) names it
	bit        uint   // its number, the bit in /proc/self/status's CapEff
	What       string // what the probe reads with it
	// hostOnly: needed to read the host, not a tree under --root.
	hostOnly bool
}

// Privileges lists what the probes need that root has and other users lack.
var Privileges = []Privilege{
	// iptables-save and nft list talk netlink (or a raw socket) to the kernel's tables.
	{Probe: "firewall", Capability: "CAP_NET_ADMIN", bit: 12, What: "the iptables and nftables rules"},
	// /proc/PID/environ of another user's process opens only with ptrace read access.
	{Probe: "proxy", Capability: "CAP_SYS_PTRACE", bit: 19, What: "other processes' environments (/proc/PID/environ)", hostOnly: true},
	// Entering a container's network namespace (setns) needs CAP_SYS_ADMIN. (Opening another
	// user's /proc/PID/ns/net needs ptrace read access too, which root also has; a process
	// given only CAP_SYS_ADMIN sees each container's error instead.)
	{Probe: "containers", Capability: "CAP_SYS_ADMIN", bit: 21, What: "the containers' network namespaces from inside (setns)", hostOnly: true},
}

// Reason is why the probe did not run, as its result's error.
func (p Privilege) Reason() string {
	return fmt.Sprintf("not run: this process lacks %s (not root?)", p.Capability)
}

// MissingPrivileges lists the privileges this process lacks to probe the system at root
// ("/" or a tree). When its capabilities cannot be read, it lacks none: the probes try,
// and fail with their own errors if they must.
func MissingPrivileges(root string) []Privilege {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	return missingPrivileges(status, root)
}

func missingPrivileges(status []byte, root string) []Privilege {
	var eff uint64
	found := false
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			eff, found = n, err == nil
		}
	}
	if !found {
		return nil
	}
	var missing []Privilege
	for _, p := range Privileges {
		if p.hostOnly && root != "" && root != "/" {
			continue
		}
		if eff&(1<<p.bit) == 0 {
			missing = append(missing, p)
		}
	}
	return missing
}
