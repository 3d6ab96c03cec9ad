package facts

import (
	"context"
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

// RouteProbe reads the route to IMDS over netlink.
type RouteProbe struct{}

// Name implements Probe.
func (RouteProbe) Name() string { return "route" }

// Gather implements Probe.
func (RouteProbe) Gather(ctx context.Context, cfg Config, f *Facts) error {
	r, err := ReadRoute()
	if err != nil {
		return err
	}
	f.Route = r
	return nil
}

// ReadRoute describes the route to 169.254.169.254 in the current network namespace.
func ReadRoute() (*Route, error) {
	rl, err := lookupRoute(imdsV4)
	if err != nil {
		return nil, err
	}
	r := &Route{Type: rl.typ, Interface: rl.oif, Source: addrString(rl.src), Gateway: addrString(rl.gw), Prefix: rl.prefix, Table: rl.table}
	if r.PrimaryInterface, r.PrimaryGateway, err = primaryInterface(); err != nil {
		return nil, err
	}
	ruled, err := systemdIMDSRuled(netlink.FAMILY_V4)
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

// routeLookup is what the kernel decides for one destination.
type routeLookup struct {
	typ           string
	oif           string
	src, gw       netip.Addr
	prefix, table string
}

// Errors of a route lookup that name the kind of route that refused it.
var routeErrTypes = map[error]string{
	unix.EACCES: "prohibit", unix.EINVAL: "blackhole", unix.EHOSTUNREACH: "unreachable", unix.ENETUNREACH: "none",
}

var routeTypes = map[int]string{
	unix.RTN_UNICAST: "unicast", unix.RTN_LOCAL: "local", unix.RTN_BLACKHOLE: "blackhole",
	unix.RTN_PROHIBIT: "prohibit", unix.RTN_UNREACHABLE: "unreachable", unix.RTN_THROW: "throw",
}

// lookupRoute asks the kernel which route a packet to dst would take (`ip route get`),
// then which FIB entry decided it (`ip route get fibmatch`), so a refusal names its route.
func lookupRoute(dst netip.Addr) (routeLookup, error) {
	ip := net.IP(dst.AsSlice())
	routes, err := netlink.RouteGet(ip)
	if err != nil {
		var errno unix.Errno
		if !errors.As(err, &errno) || routeErrTypes[errno] == "" {
			return routeLookup{}, fmt.Errorf("look up the route to %s: %w", dst, err)
		}
		rl := routeLookup{typ: routeErrTypes[errno]}
		if rl.typ == "none" {
			return rl, nil
		}
		rl.prefix, rl.table, err = refusingRoute(dst, rl.typ)
		return rl, err
	}
	if len(routes) == 0 {
		return routeLookup{typ: "none"}, nil
	}
	rt := routes[0]
	rl := routeLookup{typ: routeTypes[rt.Type], src: ipAddr(rt.Src), gw: ipAddr(rt.Gw), table: tableName(rt.Table)}
	if rl.typ == "" {
		rl.typ = strconv.Itoa(rt.Type)
	}
	if link, err := netlink.LinkByIndex(rt.LinkIndex); err == nil {
		rl.oif = link.Attrs().Name
	}
	if fib, err := netlink.RouteGetWithOptions(ip, &netlink.RouteGetOptions{FIBMatch: true}); err == nil && len(fib) > 0 {
		rl.prefix, rl.table = prefixString(fib[0].Dst, dst), tableName(fib[0].Table)
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
		if routePrefix(rt.Dst, imdsV4).Bits() == 0 && rt.Type == unix.RTN_UNICAST && rt.LinkIndex > 0 {
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
