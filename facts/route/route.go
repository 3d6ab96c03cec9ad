package route

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Route is the kernel's route to 169.254.169.254.
type Route struct {
	Type             string `cty:"type" json:"type" doc:"unicast, local, blackhole, prohibit, unreachable or none."`
	Interface        string `cty:"interface" json:"interface" doc:"Outgoing interface; empty unless the type is unicast or local."`
	Gateway          string `cty:"gateway" json:"gateway" doc:"Next hop, empty when on-link."`
	Source           string `cty:"source" json:"source" doc:"Source address the kernel picks for IMDS requests."`
	Prefix           string `cty:"prefix" json:"prefix" doc:"The route that decides, e.g. \"169.254.169.254/32\" or \"0.0.0.0/0\"; empty when there is none."`
	Table            string `cty:"table" json:"table" doc:"Routing table of that route: main, local, default or its number."`
	PrimaryInterface string `cty:"primary_interface" json:"primary_interface" doc:"The primary ENI: the default route's interface; without a default route, the first up non-loopback interface with an IPv4 address."`
	PrimaryGateway   string `cty:"primary_gateway" json:"primary_gateway" doc:"The default route's gateway; empty without one."`
	ManagedBy        string `cty:"managed_by" json:"managed_by" doc:"\"systemd-imdsd\" when an fwmark 0x7FFF0815 policy rule shows systemd's IMDS daemon owns the route (its prohibit route is intentional); otherwise empty."`
	OK               bool   `cty:"ok" json:"ok" doc:"IMDS traffic from root can leave by this route: local, or unicast via the primary interface."`
	Reason           string `cty:"reason" json:"reason" doc:"Why ok is false, in words; empty when ok."`
}

// SystemdIMDSMark is the firewall mark (and table) systemd-imdsd routes IMDS traffic with.
const SystemdIMDSMark = 0x7FFF0815

// IMDS addresses: the route is looked up for the IPv4 one, and firewall rules are checked
// against both.
var (
	IMDSv4 = netip.MustParseAddr("169.254.169.254")
	IMDSv6 = netip.MustParseAddr("fd00:ec2::254")
)

// IMDSAddr is the IMDS address of one family.
func IMDSAddr(v6 bool) netip.Addr {
	if v6 {
		return IMDSv6
	}
	return IMDSv4
}

// Read describes the route to 169.254.169.254 in the current network namespace.
func Read() (*Route, error) {
	rl, err := Lookup(IMDSv4)
	if err != nil {
		return nil, err
	}
	r := &Route{Type: rl.Type, Interface: rl.OIF, Source: addrString(rl.Src), Gateway: addrString(rl.Gw), Prefix: rl.Prefix, Table: rl.Table}
	if r.PrimaryInterface, r.PrimaryGateway, err = primaryInterface(); err != nil {
		return nil, err
	}
	ruled, err := SystemdIMDSRuled(netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	if ruled {
		r.ManagedBy = MediatorSystemdIMDS
	}
	r.OK, r.Reason = judgeRoute(r)
	return r, nil
}

func judgeRoute(r *Route) (bool, string) {
	switch r.Type {
	case "local":
		return true, ""
	case "unicast":
		if r.PrimaryInterface == "" || r.Interface == r.PrimaryInterface {
			return true, ""
		}
		return false, fmt.Sprintf("IMDS traffic leaves by %s, not by the primary interface %s", r.Interface, r.PrimaryInterface)
	case "none":
		return false, "no route to 169.254.169.254"
	}
	return false, fmt.Sprintf("%s route %s in table %s", r.Type, r.Prefix, r.Table)
}

// Decision is what the kernel decides for one destination.
type Decision struct {
	Type          string // unicast, local, blackhole, prohibit, unreachable, none, …
	OIF           string // outgoing interface
	Src, Gw       netip.Addr
	Prefix, Table string // the route that decided and its table
}

// Errors of a route lookup that name the kind of route that refused it.
var routeErrTypes = map[error]string{
	unix.EACCES: "prohibit", unix.EINVAL: "blackhole", unix.EHOSTUNREACH: "unreachable", unix.ENETUNREACH: "none",
}

var routeTypes = map[int]string{
	unix.RTN_UNICAST: "unicast", unix.RTN_LOCAL: "local", unix.RTN_BLACKHOLE: "blackhole",
	unix.RTN_PROHIBIT: "prohibit", unix.RTN_UNREACHABLE: "unreachable", unix.RTN_THROW: "throw",
}

// Lookup asks the kernel which route a packet to dst would take (`ip route get`),
// then which FIB entry decided it (`ip route get fibmatch`), so a refusal names its route.
func Lookup(dst netip.Addr) (Decision, error) {
	ip := net.IP(dst.AsSlice())
	routes, err := netlink.RouteGet(ip)
	if err != nil {
		var errno unix.Errno
		if !errors.As(err, &errno) || routeErrTypes[errno] == "" {
			return Decision{}, fmt.Errorf("look up the route to %s: %w", dst, err)
		}
		rl := Decision{Type: routeErrTypes[errno]}
		if rl.Type == "none" {
			return rl, nil
		}
		rl.Prefix, rl.Table, err = refusingRoute(dst, rl.Type)
		return rl, err
	}
	if len(routes) == 0 {
		return Decision{Type: "none"}, nil
	}
	rt := routes[0]
	rl := Decision{Type: routeTypes[rt.Type], Src: ipAddr(rt.Src), Gw: ipAddr(rt.Gw), Table: tableName(rt.Table)}
	if rl.Type == "" {
		rl.Type = strconv.Itoa(rt.Type)
	}
	if link, err := netlink.LinkByIndex(rt.LinkIndex); err == nil {
		rl.OIF = link.Attrs().Name
	}
	if fib, err := netlink.RouteGetWithOptions(ip, &netlink.RouteGetOptions{FIBMatch: true}); err == nil && len(fib) > 0 {
		rl.Prefix, rl.Table = prefixString(fib[0].Dst, dst), tableName(fib[0].Table)
	}
	return rl, nil
}

// refusingRoute finds the most specific route of type typ holding dst, in any table.
func refusingRoute(dst netip.Addr, typ string) (prefix, table string, err error) {
	family := netlink.FAMILY_V4
	if dst.Is6() {
		family = netlink.FAMILY_V6
	}
	routes, err := netlink.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return "", "", fmt.Errorf("list routes: %w", err)
	}
	best := -1
	for _, rt := range routes {
		if routeTypes[rt.Type] != typ {
			continue
		}
		p := routePrefix(rt.Dst, dst)
		if p.Contains(dst) && p.Bits() > best {
			best, prefix, table = p.Bits(), p.String(), tableName(rt.Table)
		}
	}
	return prefix, table, nil
}

// primaryInterface is the interface (and gateway) of the main table's preferred default
// route or, without one, the first up non-loopback interface with an IPv4 address.
func primaryInterface() (name, gateway string, err error) {
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return "", "", fmt.Errorf("list routes: %w", err)
	}
	var defaults []netlink.Route
	for _, rt := range routes {
		if routePrefix(rt.Dst, IMDSv4).Bits() == 0 && rt.Type == unix.RTN_UNICAST && rt.LinkIndex > 0 {
			defaults = append(defaults, rt)
		}
	}
	sort.SliceStable(defaults, func(i, j int) bool { return defaults[i].Priority < defaults[j].Priority })
	if len(defaults) > 0 {
		link, err := netlink.LinkByIndex(defaults[0].LinkIndex)
		if err != nil {
			return "", "", fmt.Errorf("interface of the default route: %w", err)
		}
		return link.Attrs().Name, addrString(ipAddr(defaults[0].Gw)), nil
	}
	links, err := netlink.LinkList()
	if err != nil {
		return "", "", fmt.Errorf("list interfaces: %w", err)
	}
	sort.Slice(links, func(i, j int) bool { return links[i].Attrs().Index < links[j].Attrs().Index })
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 || a.Flags&net.FlagUp == 0 {
			continue
		}
		if addrs, err := netlink.AddrList(l, netlink.FAMILY_V4); err == nil && len(addrs) > 0 {
			return a.Name, "", nil
		}
	}
	return "", "", nil
}

// routePrefix is a route's destination; netlink reports default routes as nil or /0.
func routePrefix(dst *net.IPNet, like netip.Addr) netip.Prefix {
	if dst == nil {
		if like.Is4() {
			return netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
		return netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	a, _ := netip.AddrFromSlice(dst.IP)
	ones, _ := dst.Mask.Size()
	if like.Is4() {
		a = a.Unmap()
	}
	return netip.PrefixFrom(a, ones).Masked()
}

func prefixString(dst *net.IPNet, like netip.Addr) string { return routePrefix(dst, like).String() }

func tableName(t int) string {
	switch t {
	case unix.RT_TABLE_MAIN:
		return "main"
	case unix.RT_TABLE_LOCAL:
		return "local"
	case unix.RT_TABLE_DEFAULT:
		return "default"
	}
	return strconv.Itoa(t)
}

func ipAddr(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// MediatorSystemdIMDS is the managed_by (and imds.mediated_by) value when systemd-imdsd owns
// the path to IMDS.
const MediatorSystemdIMDS = "systemd-imdsd"

// SystemdIMDSRuled reports whether a policy rule of family routes systemd-imdsd's fwmark.
func SystemdIMDSRuled(family int) (bool, error) {
	rules, err := netlink.RuleList(family)
	if err != nil {
		return false, fmt.Errorf("list routing policy rules: %w", err)
	}
	for _, rule := range rules {
		if rule.Mark == SystemdIMDSMark {
			return true, nil
		}
	}
	return false, nil
}
