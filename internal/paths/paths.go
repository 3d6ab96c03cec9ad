// Package paths keeps every file location and external binary imdsmend uses in one place,
// so tests can point them at a temporary tree (--root) and packagers can override them at
// link time (-ldflags "-X github.com/imdsmend/imdsmend/internal/paths.Iptables=...").
package paths

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Link-time overridable defaults.
var (
	DefaultPolicyFile = "/etc/imdsmend/policy.hcl"
	DefaultStateDir   = "/var/lib/imdsmend"
	DefaultLockFile   = "/run/imdsmend.lock"

	Iptables        = "iptables"
	Ip6tables       = "ip6tables"
	IptablesLegacy  = "iptables-legacy"
	Ip6tablesLegacy = "ip6tables-legacy"
	Nft             = "nft"
	Systemctl       = "systemctl"
	CloudInit       = "cloud-init"

	// The iptables backends (facts/firewall, remediate/firewall_delete.go): the nf_tables
	// and legacy variants, their -save readers, plain names for old legacy-only distros,
	// and the xtables lock legacy iptables takes (XTABLES_LOCKFILE overrides it, as in
	// iptables itself; it is the kernel-wide lock, so --root does not move it).
	IptablesNft         = "iptables-nft"
	Ip6tablesNft        = "ip6tables-nft"
	IptablesNftSave     = "iptables-nft-save"
	Ip6tablesNftSave    = "ip6tables-nft-save"
	IptablesLegacySave  = "iptables-legacy-save"
	Ip6tablesLegacySave = "ip6tables-legacy-save"
	IptablesSave        = "iptables-save"
	Ip6tablesSave       = "ip6tables-save"
	XtablesLock         = "/run/xtables.lock"

	// Where proxy variables are set (facts/proxy), and the process table.
	EnvironmentFile    = "/etc/environment"
	ProfileDir         = "/etc/profile.d"
	SystemdSystemConf  = "/etc/systemd/system.conf"
	SystemdConfDir     = "/etc/systemd/system.conf.d"
	SystemdUnitDir     = "/etc/systemd/system"
	DockerDaemonConfig = "/etc/docker/daemon.json"
	ProcDir            = "/proc"

	// Where firewall front ends keep their rules (facts/firewall source attribution,
	// remediate's front-end mends).
	UFWConf            = "/etc/ufw/ufw.conf"
	UFWDefaults        = "/etc/default/ufw"
	UFWUserRules       = "/etc/ufw/user.rules"
	UFWUser6Rules      = "/etc/ufw/user6.rules"
	UFWBeforeRules     = "/etc/ufw/before.rules"
	UFWBefore6Rules    = "/etc/ufw/before6.rules"
	UFWAfterRules      = "/etc/ufw/after.rules"
	UFWAfter6Rules     = "/etc/ufw/after6.rules"
	IptablesRulesV4    = "/etc/iptables/rules.v4"
	IptablesRulesV6    = "/etc/iptables/rules.v6"
	SysconfigIptables  = "/etc/sysconfig/iptables"
	SysconfigIp6tables = "/etc/sysconfig/ip6tables"
	NftablesConfs      = []string{"/etc/nftables.conf", "/etc/sysconfig/nftables.conf"}
	NftIncludeDir      = "/etc"
	FirewalldDirect    = "/etc/firewalld/direct.xml"
	UFW                = "ufw"
	FirewallCmd        = "firewall-cmd"
)

// Paths resolves absolute system paths against a root directory.
type Paths struct {
	// Root prefixes every file imdsmend reads or writes ("/" in production).
	Root string
	// StateDir is the state directory as seen inside Root (ledger, state.json).
	StateDir string
	// LockFile is the run lock on this host, whatever Root says: every run that changes
	// the host takes it, and a tree under --root is changed through the host's firewall
	// and routes too.
	LockFile string
}

// New returns Paths for root with the default state directory and lock file.
func New(root string) Paths {
	if root == "" {
		root = "/"
	}
	return Paths{Root: root, StateDir: DefaultStateDir, LockFile: DefaultLockFile}
}

// File maps an absolute system path to its location under Root. The path is cleaned as
// an absolute path first, so ".." can never climb out of Root.
func (p Paths) File(abs string) string {
	clean := filepath.Clean("/" + abs)
	if p.Root == "" || p.Root == "/" {
		return clean
	}
	return filepath.Join(p.Root, clean)
}

// Resolve follows the symlinks in abs as the system at Root sees them: an absolute link
// target starts again at Root and ".." never climbs above it. It returns the resolved
// path as seen inside Root (map it with File); components past a missing one are kept.
func (p Paths) Resolve(abs string) (string, error) {
	const maxLinks = 40
	rest := strings.Split(filepath.Clean("/"+abs), "/")
	resolved, links := "/", 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, c)
		fi, err := os.Lstat(p.File(next))
		if errors.Is(err, fs.ErrNotExist) {
			return filepath.Join(append([]string{next}, rest...)...), nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("resolve %s: too many levels of symbolic links", abs)
		}
		target, err := os.Readlink(p.File(next))
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			resolved = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return resolved, nil
}

// State returns the location of a file in the state directory.
func (p Paths) State(name string) string { return p.File(filepath.Join(p.StateDir, name)) }

// Ledger is the append-only record of every change.
func (p Paths) Ledger() string { return p.State("ledger.jsonl") }

// Lock is the file that serialises runs: on the host, not under Root.
func (p Paths) Lock() string { return filepath.Clean(p.LockFile) }
