// Package nic reads the ENA driver's allowance counters: the packets the instance's
// network allowances dropped, among them linklocal_allowance_exceeded, the packets to
// IMDS (and the other link-local services) dropped for exceeding their rate. Counters are
// kept between runs in the state directory's state.json so each run reports what rose
// since the previous one.
package nic

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/internal/statefile"
	"github.com/safchain/ethtool"
	"golang.org/x/sys/unix"
)

// NIC is the ENA allowance counters of every network interface.
type NIC struct {
	Interfaces []Interface `cty:"interfaces" json:"interfaces" doc:"Every non-loopback interface, ENA or not."`
	// The sum over the interfaces keeps the rule short and holds on an instance with
	// several ENIs: IMDS traffic leaves by the primary one, but which is primary can change.
	LinkLocalExceededDelta int64   `cty:"linklocal_allowance_exceeded_delta" json:"linklocal_allowance_exceeded_delta" doc:"How much linklocal_allowance_exceeded rose since the previous run, summed over the interfaces whose counters are available: packets to IMDS, DNS, NTP and the other link-local services the instance dropped for exceeding their rate (1024 packets per second per ENI). 0 on the first run."`
	WindowSeconds          float64 `cty:"window_seconds" json:"window_seconds" doc:"Seconds since the previous run's sample the deltas cover; 0 on the first run or when no counter is available."`
	StateError             string  `cty:"state_error" json:"state_error,omitempty" doc:"Why the counters could not be kept in state.json for the next run's deltas; empty when they were."`
}

// Interface is one interface's driver and, on ENA, its allowance counters.
type Interface struct {
	Name          string           `cty:"name" json:"name" doc:"Interface name."`
	Driver        string           `cty:"driver" json:"driver" doc:"Kernel driver, e.g. ena."`
	DriverVersion string           `cty:"driver_version" json:"driver_version" doc:"The driver's version as ethtool -i shows it."`
	Available     bool             `cty:"available" json:"available" doc:"The allowance counters were read: an ENA driver 2.2.10 or newer that exposes them."`
	Reason        string           `cty:"reason" json:"reason" doc:"Why the counters are unavailable; empty when available."`
	Counters      map[string]int64 `cty:"counters" json:"counters" doc:"The allowance counters by ethtool -S name (linklocal_allowance_exceeded, pps_allowance_exceeded, bw_in_allowance_exceeded, bw_out_allowance_exceeded, conntrack_allowance_exceeded; conntrack_allowance_available, a gauge, when the driver has it); empty when unavailable."`
	Deltas        map[string]int64 `cty:"deltas" json:"deltas" doc:"How much each *_allowance_exceeded counter rose since the previous run; empty on the first run and when unavailable."`
	Reset         bool             `cty:"reset" json:"reset" doc:"The counters went back or the driver changed since the previous run (driver reload, reboot): the deltas are the counters' values since then."`
}

// Counter names as the ENA driver's ethtool -S shows them.
const (
	LinkLocalExceeded = "linklocal_allowance_exceeded"
	// ConntrackAvailable is a gauge (tracked connections still free), not a counter.
	ConntrackAvailable = "conntrack_allowance_available"
)

// ExceededCounters are the ENA counters of packets dropped for exceeding an allowance.
var ExceededCounters = []string{
	"bw_in_allowance_exceeded", "bw_out_allowance_exceeded", "pps_allowance_exceeded",
	"conntrack_allowance_exceeded", LinkLocalExceeded,
}

// MinDriver is the first ENA driver version with the allowance counters.
var MinDriver = [3]int{2, 2, 10}

// Stats is what ethtool says of one interface: its driver (ethtool -i) and statistics
// (ethtool -S).
type Stats struct {
	Driver, Version string
	Values          map[string]uint64
}

// Judge turns one interface's ethtool statistics into its counters, or the reason there
// are none: not ENA, an ENA driver too old for them, or a device that does not expose them.
func Judge(name string, s Stats) Interface {
	in := Interface{Name: name, Driver: s.Driver, DriverVersion: s.Version}
	if s.Driver != "ena" {
		in.Reason = fmt.Sprintf("driver %q is not ena: the allowance counters exist only on ENA interfaces", s.Driver)
		return in
	}
	if v, ok := parseVersion(s.Version); ok && less(v, MinDriver) {
		in.Reason = fmt.Sprintf("ena driver %s is older than 2.2.10, the first with the allowance counters: update the driver", s.Version)
		return in
	}
	if _, ok := s.Values[LinkLocalExceeded]; !ok {
		in.Reason = fmt.Sprintf("ena driver %s exposes no allowance statistics (ethtool -S has no %s)", s.Version, LinkLocalExceeded)
		return in
	}
	in.Available = true
	in.Counters = make(map[string]int64, len(ExceededCounters)+1)
	for _, c := range append(ExceededCounters[:len(ExceededCounters):len(ExceededCounters)], ConntrackAvailable) {
		if v, ok := s.Values[c]; ok {
			in.Counters[c] = clamp(v)
		}
	}
	return in
}

// clamp keeps a counter within int64 (cty numbers and JSON readers cope with it); a
// 64-bit counter does not reach 2^63 in an instance's life.
func clamp(v uint64) int64 { return int64(min(v, 1<<63-1)) }

// parseVersion reads the leading major.minor.patch of a driver version such as "2.8.1g"
// or "2.2.10g"; ok is false when there is none (a kernel release as the in-tree driver
// shows it, "6.8.0-1015-aws", parses, and is newer, which it is).
func parseVersion(s string) (v [3]int, ok bool) {
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return v, false
	}
	for i, p := range parts {
		end := 0
		for end < len(p) && p[end] >= '0' && p[end] <= '9' {
			end++
		}
		n, err := strconv.Atoi(p[:end])
		if err != nil {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

func less(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// ParseStats parses `ethtool -S` output: a "NIC statistics:" header, then "name: value"
// lines. Lines that are not a name and an unsigned number are skipped.
func ParseStats(out []byte) map[string]uint64 {
	m := make(map[string]uint64)
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		n, err := strconv.ParseUint(strings.TrimSpace(value), 10, 64)
		if err != nil || name == "" {
			continue
		}
		m[name] = n
	}
	return m
}

// Config is what Read needs: where state.json is, and the time of this sample.
type Config struct {
	Paths paths.Paths
	Now   time.Time
}

// StateFile is the name, in the state directory, of the file the counters are kept in.
const StateFile = statefile.File

// Read reads every non-loopback interface's allowance counters with ethtool's ioctls and
// the deltas since the counters kept in state.json, then keeps these for the next run.
// An interface that vanishes between listing and reading is left out.
func Read(ctx context.Context, cfg Config) (*NIC, error) {
	ins, err := Sample(ctx)
	if err != nil {
		return nil, err
	}
	return track(cfg, ins), nil
}

// Sample reads every non-loopback interface's allowance counters, as Read does, without
// deltas and without touching state.json (the watch loop samples between passes).
func Sample(ctx context.Context) ([]Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	et, err := ethtool.NewEthtool()
	if err != nil {
		return nil, fmt.Errorf("open an ethtool socket: %w", err)
	}
	defer et.Close()
	var names []string
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			names = append(names, i.Name)
		}
	}
	return readInterfaces(ctx, et, names)
}

// driver is what Read asks of ethtool (an interface so tests can make one vanish).
type driver interface {
	DriverInfo(name string) (ethtool.DrvInfo, error)
	Stats(name string) (map[string]uint64, error)
}

// readInterfaces reads each interface, sorted by name. One that vanished since the
// listing is left out; one that fails otherwise is listed, unavailable, with the error.
func readInterfaces(ctx context.Context, et driver, names []string) ([]Interface, error) {
	var ins []Interface
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read interface counters: %w", err)
		}
		in, err := readInterface(et, name)
		if errors.Is(err, unix.ENODEV) {
			continue // gone since the listing
		}
		if err != nil {
			in = Interface{Name: name, Reason: err.Error()}
		}
		ins = append(ins, in)
	}
	slices.SortFunc(ins, func(a, b Interface) int { return strings.Compare(a.Name, b.Name) })
	return ins, nil
}

// readInterface asks the driver (ethtool -i, then -S on ENA).
func readInterface(et driver, name string) (Interface, error) {
	info, err := et.DriverInfo(name)
	if err != nil {
		return Interface{}, fmt.Errorf("ethtool -i %s: %w", name, err)
	}
	s := Stats{Driver: info.Driver, Version: info.Version}
	if s.Driver == "ena" {
		if s.Values, err = et.Stats(name); err != nil {
			return Interface{}, fmt.Errorf("ethtool -S %s: %w", name, err)
		}
	}
	return Judge(name, s), nil
}
