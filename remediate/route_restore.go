package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/imdsmend/imdsmend/facts/route"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/vishvananda/netlink"
	"github.com/zclconf/go-cty/cty"
	"golang.org/x/sys/unix"
)

// RouteRestore puts a route to 169.254.169.254/32 via the primary interface into the main
// table, replacing a /32 route there that refuses or misroutes IMDS traffic. Undo puts
// back what was there before (or removes the added route).
type RouteRestore struct{}

// Kind implements Fixer.
func (RouteRestore) Kind() string { return "route_restore" }

// Doc implements Fixer.
func (RouteRestore) Doc() string {
	return "route 169.254.169.254/32 in the main table via `interface` (and `gateway`); undo restores the previous route"
}

// Permission implements Fixer.
func (RouteRestore) Permission() types.Permission { return types.PermRoutes }

// Spec implements Fixer.
func (RouteRestore) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{
		"interface": &hcldec.AttrSpec{Name: "interface", Type: cty.String, Required: true},
		"gateway":   &hcldec.AttrSpec{Name: "gateway", Type: cty.String},
	}
}

// imdsPrefix is the route the fixer owns.
var imdsPrefix = &net.IPNet{IP: net.IPv4(169, 254, 169, 254).To4(), Mask: net.CIDRMask(32, 32)}

// routeRecord is a route of the main table to 169.254.169.254/32, as the ledger keeps it.
type routeRecord struct {
	Type      int    `json:"type"`
	Interface string `json:"interface,omitempty"`
	Gateway   string `json:"gateway,omitempty"`
	Metric    int    `json:"metric"`
	Protocol  int    `json:"protocol"`
	Scope     int    `json:"scope"`
	Source    string `json:"source,omitempty"`
}

type routeRestoreData struct {
	Want routeRecord `json:"want"`
	// Replaced is the route that was there before, nil when there was none: set by Plan,
	// so the intent holds what undo needs, and again by Apply.
	Replaced *routeRecord `json:"replaced,omitempty"`
}

// Plan implements Fixer.
func (RouteRestore) Plan(_ context.Context, _ *Env, args cty.Value) ([]*Change, error) {
	iface := optString(args.GetAttr("interface"))
	gw := optString(args.GetAttr("gateway"))
	if iface == "" {
		return nil, errors.New("the primary interface is unknown (no default route): name it with interface = \"ens5\" in the remediate block")
	}
	if err := refuseSystemdIMDS(); err != nil {
		return nil, err
	}
	want := routeRecord{Type: unix.RTN_UNICAST, Interface: iface, Gateway: gw, Protocol: unix.RTPROT_STATIC, Scope: int(netlink.SCOPE_UNIVERSE)}
	if gw == "" {
		want.Scope = int(netlink.SCOPE_LINK)
	} else if a, err := netip.ParseAddr(gw); err != nil || !a.Is4() {
		return nil, fmt.Errorf("gateway %q is not an IPv4 address", gw)
	}
	if _, err := netlink.LinkByName(iface); err != nil {
		return nil, fmt.Errorf("interface %s: %w", iface, err)
	}
	cur, err := currentIMDSRoute()
	if err != nil {
		return nil, err
	}
	if cur.routes(want) {
		return nil, nil
	}
	verb := "add"
	if cur != nil {
		verb, want.Metric = "replace", cur.Metric
	}
	detail := "ip route " + verb + " 169.254.169.254/32"
	if gw != "" {
		detail += " via " + gw
	}
	detail += " dev " + iface
	if want.Metric != 0 {
		detail += fmt.Sprintf(" metric %d", want.Metric)
	}
	if cur != nil {
		detail += " (replacing " + cur.describe() + ")"
	}
	data, err := json.Marshal(routeRestoreData{Want: want, Replaced: cur})
	if err != nil {
		return nil, err
	}
	return []*Change{{Target: "route 169.254.169.254/32 table main", Detail: detail, Data: data}}, nil
}

// Apply implements Fixer.
func (RouteRestore) Apply(_ context.Context, _ *Env, c *Change) error {
	var d routeRestoreData
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return fmt.Errorf("read change record: %w", err)
	}
	if err := refuseSystemdIMDS(); err != nil {
		return err
	}
	cur, err := currentIMDSRoute()
	if err != nil {
		return err
	}
	if cur.routes(d.Want) {
		c.Status = types.StatusUnchanged
		return nil
	}
	want, err := d.Want.route()
	if err != nil {
		return err
	}
	// Replace acts on the route with the same prefix, table and metric: taking the
	// current route's metric swaps it atomically, with no moment without a route.
	d.Replaced = cur
	if cur != nil {
		want.Priority = cur.Metric
		err = netlink.RouteReplace(want)
	} else {
		err = netlink.RouteAdd(want)
	}
	if err != nil {
		return fmt.Errorf("route 169.254.169.254/32 via %s: %w", d.Want.Interface, err)
	}
	d.Want.Metric = want.Priority
	c.Data, err = json.Marshal(d)
	return err
}

// Undo implements Fixer.
func (RouteRestore) Undo(_ context.Context, _ *Env, c *Change) error {
	var d routeRestoreData
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return fmt.Errorf("read change record: %w", err)
	}
	if d.Replaced != nil {
		old, err := d.Replaced.route()
		if err != nil {
			return err
		}
		if err := netlink.RouteReplace(old); err != nil {
			return fmt.Errorf("restore %s: %w", d.Replaced.describe(), err)
		}
		c.Detail = "ip route replace " + d.Replaced.command()
		return nil
	}
	want, err := d.Want.route()
	if err != nil {
		return err
	}
	if err := netlink.RouteDel(want); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("delete route 169.254.169.254/32 via %s: %w", d.Want.Interface, err)
	}
	c.Detail = "ip route del " + d.Want.command()
	return nil
}

// Observe implements Fixer: the change is in effect while the main table routes IMDS the
// way it wanted.
func (RouteRestore) Observe(_ context.Context, _ *Env, c *Change) (bool, error) {
	var d routeRestoreData
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return false, fmt.Errorf("read change record: %w", err)
	}
	cur, err := currentIMDSRoute()
	if err != nil {
		return false, err
	}
	return cur.routes(d.Want), nil
}

// refuseSystemdIMDS keeps the fixer away from systemd-imdsd's deliberate layout.
func refuseSystemdIMDS() error {
	rl, err := netlink.RuleList(netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list routing policy rules: %w", err)
	}
	for _, r := range rl {
		if r.Mark == route.SystemdIMDSMark {
			return fmt.Errorf("systemd-imdsd routes IMDS (policy rule fwmark %#x): its prohibit route is intentional and is left alone", route.SystemdIMDSMark)
		}
	}
	return nil
}

// currentIMDSRoute is the main table's route to exactly 169.254.169.254/32, if any.
func currentIMDSRoute() (*routeRecord, error) {
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN, Dst: imdsPrefix}, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_DST)
	if err != nil {
		return nil, fmt.Errorf("list routes to 169.254.169.254/32: %w", err)
	}
	if len(routes) == 0 {
		return nil, nil
	}
	rt := routes[0]
	for _, r := range routes[1:] {
		if r.Priority < rt.Priority {
			rt = r
		}
	}
	rec := &routeRecord{Type: rt.Type, Metric: rt.Priority, Protocol: int(rt.Protocol), Scope: int(rt.Scope)}
	if rt.Gw != nil {
		rec.Gateway = rt.Gw.String()
	}
	if rt.Src != nil {
		rec.Source = rt.Src.String()
	}
	if rt.LinkIndex > 0 {
		if l, err := netlink.LinkByIndex(rt.LinkIndex); err == nil {
			rec.Interface = l.Attrs().Name
		}
	}
	return rec, nil
}

// routes reports whether r, the current route (nil for none), already sends IMDS traffic
// where want does.
func (r *routeRecord) routes(want routeRecord) bool {
	return r != nil && r.Type == want.Type && r.Interface == want.Interface && r.Gateway == want.Gateway
}

func (r routeRecord) route() (*netlink.Route, error) {
	rt := &netlink.Route{Dst: imdsPrefix, Table: unix.RT_TABLE_MAIN, Type: r.Type, Priority: r.Metric,
		Protocol: netlink.RouteProtocol(r.Protocol), Scope: netlink.Scope(r.Scope)}
	if r.Interface != "" {
		l, err := netlink.LinkByName(r.Interface)
		if err != nil {
			return nil, fmt.Errorf("interface %s: %w", r.Interface, err)
		}
		rt.LinkIndex = l.Attrs().Index
	}
	if r.Gateway != "" {
		rt.Gw = net.ParseIP(r.Gateway)
	}
	if r.Source != "" {
		rt.Src = net.ParseIP(r.Source)
	}
	return rt, nil
}

var routeTypes = map[int]string{unix.RTN_UNICAST: "unicast", unix.RTN_BLACKHOLE: "blackhole", unix.RTN_PROHIBIT: "prohibit", unix.RTN_UNREACHABLE: "unreachable", unix.RTN_THROW: "throw"}

func (r routeRecord) describe() string {
	s := routeTypes[r.Type] + " 169.254.169.254/32"
	if r.Gateway != "" {
		s += " via " + r.Gateway
	}
	if r.Interface != "" {
		s += " dev " + r.Interface
	}
	return s
}

// command is the route as `ip route` arguments (after the verb).
func (r routeRecord) command() string {
	s := r.describe()
	if r.Metric != 0 {
		s += fmt.Sprintf(" metric %d", r.Metric)
	}
	return s
}

func optString(v cty.Value) string {
	if v.IsNull() || !v.IsKnown() {
		return ""
	}
	return v.AsString()
}
