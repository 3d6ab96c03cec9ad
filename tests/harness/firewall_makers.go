package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Firewall and route blockers (issue 4). Each is made with the real tool inside the
// namespace; Gone asks the same tool whether the rule or route is still there.

// ownerRejectRule is the AWS article's rule as it prints it: `owner UID match 1000-10000`.
var ownerRejectRule = []string{"OUTPUT", "-p", "tcp", "-d", IMDSAddr + "/32", "-m", "owner", "--uid-owner", "1000-10000", "-j", "REJECT"}

// OwnerRejectIMDS refuses IMDS to uids 1000-10000 only: a deliberate restriction AWS
// documents, which root's requests pass.
var OwnerRejectIMDS = iptablesMaker("owner-reject", "iptables", "filter", ownerRejectRule)

// ChainDropIMDS drops IMDS traffic in a user chain that OUTPUT jumps to.
var ChainDropIMDS = Maker{
	Name: "chain-drop",
	What: "iptables -N IMDSBLOCK; iptables -A IMDSBLOCK -j DROP; iptables -I OUTPUT -p tcp -d 169.254.169.254/32 -j IMDSBLOCK",
	Make: func(ctx context.Context, ns *Namespace) error {
		for _, args := range [][]string{{"-N", "IMDSBLOCK"}, {"-A", "IMDSBLOCK", "-j", "DROP"}, {"-I", "OUTPUT", "-p", "tcp", "-d", IMDSAddr + "/32", "-j", "IMDSBLOCK"}} {
			if err := ns.tool(ctx, "iptables", append([]string{"-w"}, args...)...); err != nil {
				return err
			}
		}
		return nil
	},
	Gone: func(ctx context.Context, ns *Namespace) error {
		return ns.iptablesGone(ctx, "iptables", "filter", []string{"IMDSBLOCK", "-j", "DROP"})
	},
}

// CommentIMDS refuses IMDS with a rule whose comment holds an apostrophe, which
// iptables-save prints escaped ("don\'t").
var CommentIMDS = iptablesMaker("comment-apostrophe", "iptables", "filter",
	[]string{"OUTPUT", "-p", "tcp", "-d", IMDSAddr + "/32", "-m", "comment", "--comment", "don't", "-j", "REJECT"})

// WideRejectIMDS refuses every TCP connection to 1.0.0.0-254.255.255.255: it holds IMDS,
// but far more, so it is broad and must never be deleted.
var WideRejectIMDS = iptablesMaker("wide-reject", "iptables", "filter",
	[]string{"OUTPUT", "-p", "tcp", "-m", "iprange", "--dst-range", "1.0.0.0-254.255.255.255", "-j", "REJECT"})

// SharedChainRules is issue 8's example, in order: a LOGDROP chain that INPUT's
// default-deny, a block of 10.9.9.9 and an IMDS rule all jump to. Only the last is IMDS's.
var SharedChainRules = [][]string{
	{"-N", "LOGDROP"},
	{"-A", "LOGDROP", "-j", "DROP"},
	{"-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"},
	{"-A", "INPUT", "-j", "LOGDROP"},
	{"-A", "OUTPUT", "-d", "10.9.9.9/32", "-j", "LOGDROP"},
	{"-A", "OUTPUT", "-d", IMDSAddr + "/32", "-p", "tcp", "--dport", "80", "-j", "LOGDROP"},
}

// SharedChainIMDS makes SharedChainRules with iptables; Gone checks IMDS's jump only.
var SharedChainIMDS = Maker{
	Name: "shared-chain",
	What: "iptables -N LOGDROP; iptables -A LOGDROP -j DROP; iptables -A INPUT -p tcp --dport 22 -j ACCEPT; iptables -A INPUT -j LOGDROP; iptables -A OUTPUT -d 10.9.9.9/32 -j LOGDROP; iptables -A OUTPUT -d 169.254.169.254/32 -p tcp --dport 80 -j LOGDROP",
	Make: func(ctx context.Context, ns *Namespace) error {
		for _, args := range SharedChainRules {
			if err := ns.tool(ctx, "iptables", append([]string{"-w"}, args...)...); err != nil {
				return err
			}
		}
		return nil
	},
	Gone: func(ctx context.Context, ns *Namespace) error {
		return ns.iptablesGone(ctx, "iptables", "filter", SharedChainRules[5][1:])
	},
}

// NftSharedChainIMDS is the nft form: chain deny drops, the input hook (after loopback)
// and IMDS's output rule jump to it. Gone checks IMDS's jump only.
var NftSharedChainIMDS = Maker{
	Name: "nft-shared-chain",
	What: "nft add table inet shared; … chain deny { drop }; chain in { iifname lo accept; jump deny }; chain out { ip daddr 169.254.169.254 tcp dport 80 jump deny }",
	Make: func(ctx context.Context, ns *Namespace) error {
		for _, args := range [][]string{
			{"add", "table", "inet", "shared"},
			{"add", "chain", "inet", "shared", "deny"},
			{"add", "chain", "inet", "shared", "in", "{ type filter hook input priority 0; policy accept; }"},
			{"add", "chain", "inet", "shared", "out", "{ type filter hook output priority 0; policy accept; }"},
			{"add", "rule", "inet", "shared", "deny", "drop"},
			{"add", "rule", "inet", "shared", "in", "iifname", "lo", "accept"},
			{"add", "rule", "inet", "shared", "in", "jump", "deny"},
			{"add", "rule", "inet", "shared", "out", "ip", "daddr", IMDSAddr, "tcp", "dport", "80", "jump", "deny"},
		} {
			if err := ns.tool(ctx, "nft", args...); err != nil {
				return err
			}
		}
		return nil
	},
	Gone: func(ctx context.Context, ns *Namespace) error {
		res, err := ns.Exec(ctx, nil, "nft", "list", "chain", "inet", "shared", "out")
		if err != nil {
			return err
		}
		if strings.Contains(res.Stdout, "jump deny") {
			return fmt.Errorf("IMDS's jump is still in %s:\n%s", ns.Name, res.Stdout)
		}
		return nil
	},
}

// ResetIMDS answers IMDS connections with a TCP reset.
var ResetIMDS = iptablesMaker("tcp-reset", "iptables", "filter",
	[]string{"OUTPUT", "-p", "tcp", "-d", IMDSAddr + "/32", "-j", "REJECT", "--reject-with", "tcp-reset"})

// DNATIMDS sends IMDS requests to a port where nothing listens.
var DNATIMDS = iptablesMaker("dnat", "iptables", "nat",
	[]string{"OUTPUT", "-p", "tcp", "-d", IMDSAddr + "/32", "--dport", "80", "-j", "DNAT", "--to-destination", "127.0.0.1:9"})

// IPv6RejectIMDS refuses IMDS over IPv6 ([fd00:ec2::254]:80).
var IPv6RejectIMDS = iptablesMaker("ip6-reject", "ip6tables", "filter",
	[]string{"OUTPUT", "-p", "tcp", "-d", IMDSv6Addr + "/128", "--dport", "80", "-j", "REJECT"})

// LegacyRejectIMDS refuses IMDS with the legacy (x_tables) backend.
var LegacyRejectIMDS = iptablesMaker("legacy-reject", "iptables-legacy", "filter",
	[]string{"OUTPUT", "-p", "tcp", "-d", IMDSAddr + "/32", "-j", "REJECT"})

// NftRejectIMDS refuses IMDS with a native nftables rule, which iptables can't show.
var NftRejectIMDS = Maker{
	Name: "nft-reject",
	What: "nft add table inet imdsblock; nft add chain inet imdsblock out { type filter hook output priority 0; }; nft add rule inet imdsblock out ip daddr 169.254.169.254 tcp dport 80 reject comment \"no metadata\"",
	Make: func(ctx context.Context, ns *Namespace) error {
		for _, args := range [][]string{
			{"add", "table", "inet", "imdsblock"},
			{"add", "chain", "inet", "imdsblock", "out", "{ type filter hook output priority 0; policy accept; }"},
			{"add", "rule", "inet", "imdsblock", "out", "ip", "daddr", IMDSAddr, "tcp", "dport", "80", "reject", "comment", `"no metadata"`},
		} {
			if err := ns.tool(ctx, "nft", args...); err != nil {
				return err
			}
		}
		return nil
	},
	Gone: func(ctx context.Context, ns *Namespace) error {
		res, err := ns.Exec(ctx, nil, "nft", "-j", "list", "chain", "inet", "imdsblock", "out")
		if err != nil || res.ExitCode != 0 {
			return err // no table or chain: nothing left
		}
		var doc struct {
			Nftables []map[string]json.RawMessage `json:"nftables"`
		}
		if err := json.Unmarshal([]byte(res.Stdout), &doc); err != nil {
			return fmt.Errorf("nft output: %w", err)
		}
		for _, o := range doc.Nftables {
			if r, ok := o["rule"]; ok {
				return fmt.Errorf("nft rule still present in %s: %s", ns.Name, r)
			}
		}
		return nil
	},
}

// RejectMaker inserts rule (CHAIN then its spec) into iptables' filter table.
func RejectMaker(rule []string) Maker { return iptablesMaker("custom", "iptables", "filter", rule) }

// iptablesMaker inserts rule (CHAIN then its spec) into table with tool.
func iptablesMaker(name, tool, table string, rule []string) Maker {
	return Maker{
		Name: name,
		What: tool + " -t " + table + " -I " + strings.Join(rule, " "),
		Make: func(ctx context.Context, ns *Namespace) error {
			return ns.tool(ctx, tool, append([]string{"-w", "-t", table, "-I"}, rule...)...)
		},
		Gone: func(ctx context.Context, ns *Namespace) error { return ns.iptablesGone(ctx, tool, table, rule) },
	}
}

// tool runs a command in the namespace and turns a non-zero exit into an error.
func (n *Namespace) tool(ctx context.Context, name string, args ...string) error {
	res, err := n.Exec(ctx, nil, name, args...)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("%s %s in %s: exit %d: %s", name, strings.Join(args, " "), n.Name, res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	return nil
}

// iptablesGone checks with `TOOL -C` that the rule no longer exists (a missing chain
// counts as gone).
func (n *Namespace) iptablesGone(ctx context.Context, tool, table string, rule []string) error {
	res, err := n.Exec(ctx, nil, tool, append([]string{"-w", "-t", table, "-C"}, rule...)...)
	switch {
	case err != nil:
		return err
	case res.ExitCode == 0:
		return fmt.Errorf("%s rule still present in %s: -t %s -A %s", tool, n.Name, table, strings.Join(rule, " "))
	case res.ExitCode == 1, strings.Contains(res.Stderr, "does not exist"), strings.Contains(res.Stderr, "No chain/target/match"):
		return nil
	}
	return fmt.Errorf("%s -C %s in %s: exit %d: %s", tool, strings.Join(rule, " "), n.Name, res.ExitCode, strings.TrimSpace(res.Stderr))
}

// counters are the [packets:bytes] of iptables-save chain lines and the counter
// statements of nft's listing, which traffic changes.
var counters = regexp.MustCompile(`\[\d+:\d+\]|counter packets \d+ bytes \d+`)

// FirewallState is every rule in the namespace as the tools print them — iptables and
// ip6tables of both backends, and the nft ruleset — without timestamps and counters, so
// two states compare equal exactly when the rules are the same and in the same order.
func (n *Namespace) FirewallState(ctx context.Context) (string, error) {
	var b strings.Builder
	for _, cmd := range [][]string{
		{"iptables-nft-save"}, {"ip6tables-nft-save"}, {"iptables-legacy-save"}, {"ip6tables-legacy-save"}, {"nft", "list", "ruleset"},
	} {
		res, err := n.Exec(ctx, nil, cmd[0], cmd[1:]...)
		if err != nil {
			return "", err
		}
		if res.ExitCode != 0 {
			return "", fmt.Errorf("%s in %s: exit %d: %s", strings.Join(cmd, " "), n.Name, res.ExitCode, res.Stderr)
		}
		fmt.Fprintf(&b, "== %s\n", strings.Join(cmd, " "))
		for _, line := range strings.Split(res.Stdout, "\n") {
			if strings.HasPrefix(line, "#") {
				continue
			}
			b.WriteString(counters.ReplaceAllString(line, "[counted]") + "\n")
		}
	}
	return b.String(), nil
}

// ENI is the namespace's side of the link to IMDS after RouteViaENI.
const (
	ENI        = "eth0"
	eniAddr    = "10.254.0.2"
	eniGateway = "10.254.0.1"
)

// RouteViaENI makes ns look like an instance: 169.254.169.254 leaves its loopback for a
// second namespace (returned; serve IMDS there), reached through a veth named eth0 that
// carries ns's default route, as the primary ENI does. The second namespace closes with ns.
func RouteViaENI(ctx context.Context, ns *Namespace) (*Namespace, error) {
	imds, err := NewNamespace()
	if err != nil {
		return nil, err
	}
	ns.OnClose(imds.Close)
	for _, args := range [][]string{
		{"-n", ns.Name, "addr", "del", IMDSAddr + "/32", "dev", "lo"},
		{"-n", ns.Name, "link", "add", ENI, "type", "veth", "peer", "name", "imds0", "netns", imds.Name},
		{"-n", ns.Name, "addr", "add", eniAddr + "/24", "dev", ENI},
		{"-n", ns.Name, "link", "set", ENI, "up"},
		{"-n", imds.Name, "addr", "add", eniGateway + "/24", "dev", "imds0"},
		{"-n", imds.Name, "link", "set", "imds0", "up"},
		{"-n", ns.Name, "route", "add", "default", "via", eniGateway, "dev", ENI},
	} {
		if err := run("ip", args...); err != nil {
			return nil, err
		}
	}
	return imds, nil
}

// ProhibitRouteIMDS adds a prohibit route for 169.254.169.254 to the main table (use it
// after RouteViaENI; on loopback the local table would still win).
var ProhibitRouteIMDS = Maker{
	Name: "prohibit-route",
	What: "ip route add prohibit 169.254.169.254",
	Make: func(ctx context.Context, ns *Namespace) error {
		return ns.tool(ctx, "ip", "route", "add", "prohibit", IMDSAddr)
	},
	Gone: routeWorks,
}

// NoRouteIMDS deletes the default route, leaving none to 169.254.169.254 (after
// RouteViaENI).
var NoRouteIMDS = Maker{
	Name: "no-route",
	What: "ip route del default",
	Make: func(ctx context.Context, ns *Namespace) error { return ns.tool(ctx, "ip", "route", "del", "default") },
	Gone: routeWorks,
}

// SecondaryENIRouteIMDS routes 169.254.169.254 out of a second interface (a veth eth1)
// instead of the primary ENI (after RouteViaENI).
var SecondaryENIRouteIMDS = Maker{
	Name: "secondary-eni",
	What: "ip link add eth1 type veth peer name eth1p; ip link set eth1 up; ip route add 169.254.169.254/32 dev eth1",
	Make: func(ctx context.Context, ns *Namespace) error {
		for _, args := range [][]string{{"link", "add", "eth1", "type", "veth", "peer", "name", "eth1p"}, {"link", "set", "eth1", "up"}, {"route", "add", IMDSAddr + "/32", "dev", "eth1"}} {
			if err := ns.tool(ctx, "ip", args...); err != nil {
				return err
			}
		}
		return nil
	},
	Gone: func(ctx context.Context, ns *Namespace) error {
		if err := routeWorks(ctx, ns); err != nil {
			return err
		}
		res, err := ns.Exec(ctx, nil, "ip", "route", "get", IMDSAddr)
		if err != nil {
			return err
		}
		if !strings.Contains(res.Stdout, " dev "+ENI+" ") {
			return fmt.Errorf("IMDS is routed elsewhere than %s: %s", ENI, strings.TrimSpace(res.Stdout))
		}
		return nil
	},
}

// SystemdIMDSLayout lays out routing as systemd-imdsd does (after RouteViaENI): a prohibit
// route in the main table, and an fwmark 0x7FFF0815 policy rule to a table of that number
// that routes IMDS. It is intentional, so it has no Gone.
func SystemdIMDSLayout(ctx context.Context, ns *Namespace) error {
	for _, args := range [][]string{
		{"route", "add", "prohibit", IMDSAddr},
		{"rule", "add", "fwmark", "0x7FFF0815", "table", "0x7FFF0815"},
		{"route", "add", IMDSAddr, "via", eniGateway, "dev", ENI, "table", "0x7FFF0815"},
	} {
		if err := ns.tool(ctx, "ip", args...); err != nil {
			return err
		}
	}
	return nil
}

// routeWorks is nil when the kernel routes 169.254.169.254 out of the ENI (or, without
// RouteViaENI, locally).
func routeWorks(ctx context.Context, ns *Namespace) error {
	res, err := ns.Exec(ctx, nil, "ip", "route", "get", IMDSAddr)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("no route to %s in %s: %s", IMDSAddr, ns.Name, strings.TrimSpace(res.Stderr))
	}
	return nil
}

// RouteState is the namespace's routing (main table, policy rules) for before/after
// comparisons.
func (n *Namespace) RouteState(ctx context.Context) (string, error) {
	var b strings.Builder
	for _, args := range [][]string{{"route", "show", "table", "main"}, {"rule", "show"}} {
		res, err := n.Exec(ctx, nil, "ip", args...)
		if err != nil {
			return "", err
		}
		if res.ExitCode != 0 {
			return "", fmt.Errorf("ip %s in %s: %s", strings.Join(args, " "), n.Name, res.Stderr)
		}
		b.WriteString(res.Stdout)
	}
	return b.String(), nil
}

// UFW is a private UFW configuration for the Host of a test: the host's /etc/ufw and
// /etc/default/ufw copied under a --root tree and bind-mounted over the real ones in a
// mount namespace of each wrapped command's own, so ufw and imdsmend (reading the tree
// with --root) see the same files and the host's UFW is never read or changed. The copy's
// sysctl.conf is emptied: ufw then changes no kernel setting.
type UFW struct {
	ns   *Namespace
	root string
}

// ErrToolMissing: a front end's tools are not installed, so a test of it can only be
// skipped; any other failure to set it up is the test's failure.
var ErrToolMissing = errors.New("tool not installed")

// NewUFW copies UFW's configuration into root (etc/ufw, etc/default/ufw) for ns.
func NewUFW(ns *Namespace, root string) (*UFW, error) {
	if _, err := exec.LookPath("ufw"); err != nil {
		return nil, fmt.Errorf("ufw is not installed (apt-get install ufw): %w: %w", ErrToolMissing, err)
	}
	if err := os.MkdirAll(filepath.Join(root, "etc", "default"), 0o755); err != nil {
		return nil, err
	}
	for _, f := range []string{"ufw", "default/ufw"} {
		if out, err := exec.Command("cp", "-a", "/etc/"+f, filepath.Join(root, "etc", f)).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("copy /etc/%s: %w: %s", f, err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "ufw", "sysctl.conf"), nil, 0o644); err != nil {
		return nil, err
	}
	return &UFW{ns: ns, root: root}, nil
}

// Wrap is the command prefix that runs a command with the private configuration in place.
func (u *UFW) Wrap() []string {
	const script = `mount --bind "$1" /etc/ufw && mount --bind "$2" /etc/default/ufw && shift 2 && exec "$@"`
	return []string{"unshare", "-m", "sh", "-c", script, "sh", filepath.Join(u.root, "etc", "ufw"), filepath.Join(u.root, "etc", "default", "ufw")}
}

// Run runs ufw with args in the namespace, with the private configuration, and fails on
// a non-zero exit.
func (u *UFW) Run(ctx context.Context, args ...string) (string, error) {
	argv := append(u.Wrap(), append([]string{"ufw"}, args...)...)
	res, err := u.ns.Exec(ctx, nil, argv[0], argv[1:]...)
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("ufw %s: exit %d: %s%s", strings.Join(args, " "), res.ExitCode, res.Stdout, res.Stderr)
	}
	return res.Stdout, err
}

// Firewalld is firewalld running for real in a namespace, on a D-Bus system bus of its
// own: a copy of /etc/firewalld under a --root tree is bind-mounted over the real one and a
// tmpfs over /run, in a mount namespace the daemons and every wrapped command share. The
// machine's firewalld and system bus are never touched.
type Firewalld struct {
	ns   *Namespace
	proc *Proc
}

// firewalldScript sets up the mount namespace, starts the system bus, waits for its
// socket and runs firewalld in the foreground.
const firewalldScript = `set -e
mount --bind "$1" /etc/firewalld
mount -t tmpfs tmpfs /run
mkdir -p /run/dbus
dbus-daemon --system --nofork --nopidfile &
while [ ! -S /run/dbus/system_bus_socket ]; do sleep 0.02; done
exec firewalld --nofork --nopid
`

// StartFirewalld copies /etc/firewalld into root (etc/firewalld) and starts the bus and
// firewalld in ns; it returns once firewall-cmd --state answers.
func StartFirewalld(ctx context.Context, ns *Namespace, root string) (*Firewalld, error) {
	for _, bin := range []string{"firewalld", "firewall-cmd", "dbus-daemon", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s is not installed (apt-get install firewalld): %w: %w", bin, ErrToolMissing, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.Command("cp", "-a", "/etc/firewalld", filepath.Join(root, "etc", "firewalld")).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("copy /etc/firewalld: %w: %s", err, out)
	}
	p, err := ns.Start("unshare", "-m", "sh", "-c", firewalldScript, "sh", filepath.Join(root, "etc", "firewalld"))
	if err != nil {
		return nil, err
	}
	f := &Firewalld{ns: ns, proc: p}
	err = waitReady(ctx, p, func(ctx context.Context) error {
		_, err := f.Run(ctx, "--state")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("firewalld in %s: %w", ns.Name, err)
	}
	return f, nil
}

// Wrap is the command prefix that runs a command in firewalld's mount namespace.
func (f *Firewalld) Wrap() []string {
	return []string{"nsenter", "-t", fmt.Sprint(f.proc.PID()), "-m", "--"}
}

// Run runs firewall-cmd with args and fails on a non-zero exit.
func (f *Firewalld) Run(ctx context.Context, args ...string) (string, error) {
	argv := append(f.Wrap(), append([]string{"firewall-cmd"}, args...)...)
	res, err := f.ns.Exec(ctx, nil, argv[0], argv[1:]...)
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("firewall-cmd %s: exit %d: %s%s", strings.Join(args, " "), res.ExitCode, res.Stdout, res.Stderr)
	}
	return res.Stdout, err
}
