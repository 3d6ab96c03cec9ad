package nic

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/safchain/ethtool"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func fixture(t *testing.T, name string) map[string]uint64 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return ParseStats(data)
}

// TestJudge reads captured `ethtool -S` outputs as the ioctls would give them.
func TestJudge(t *testing.T) {
	tests := []struct {
		name, file, driver, version string
		want                        Interface
	}{
		{"current ENA driver", "ena-2.8.1g.txt", "ena", "2.8.1g", Interface{Available: true, Counters: map[string]int64{
			"bw_in_allowance_exceeded": 0, "bw_out_allowance_exceeded": 0, "pps_allowance_exceeded": 0,
			"conntrack_allowance_exceeded": 0, "linklocal_allowance_exceeded": 1873, "conntrack_allowance_available": 136812}}},
		{"2.2.10, without the conntrack gauge", "ena-2.2.10g-no-conntrack-gauge.txt", "ena", "2.2.10g", Interface{Available: true, Counters: map[string]int64{
			"bw_in_allowance_exceeded": 12, "bw_out_allowance_exceeded": 3, "pps_allowance_exceeded": 0,
			"conntrack_allowance_exceeded": 0, "linklocal_allowance_exceeded": 0}}},
		{"in-tree driver showing the kernel release", "ena-2.8.1g.txt", "ena", "6.8.0-1015-aws", Interface{Available: true, Counters: map[string]int64{
			"bw_in_allowance_exceeded": 0, "bw_out_allowance_exceeded": 0, "pps_allowance_exceeded": 0,
			"conntrack_allowance_exceeded": 0, "linklocal_allowance_exceeded": 1873, "conntrack_allowance_available": 136812}}},
		{"old driver", "ena-2.1.0K-old.txt", "ena", "2.1.0K", Interface{
			Reason: "ena driver 2.1.0K is older than 2.2.10, the first with the allowance counters: update the driver"}},
		{"2.2.9 is too old even with counters", "ena-2.8.1g.txt", "ena", "2.2.9g", Interface{
			Reason: "ena driver 2.2.9g is older than 2.2.10, the first with the allowance counters: update the driver"}},
		{"new version, no statistics", "ena-2.1.0K-old.txt", "ena", "2.9.0g", Interface{
			Reason: "ena driver 2.9.0g exposes no allowance statistics (ethtool -S has no linklocal_allowance_exceeded)"}},
		{"unparsable version, no statistics", "ena-2.1.0K-old.txt", "ena", "", Interface{
			Reason: "ena driver  exposes no allowance statistics (ethtool -S has no linklocal_allowance_exceeded)"}},
		{"veth", "veth.txt", "veth", "1.0", Interface{
			Reason: `driver "veth" is not ena: the allowance counters exist only on ENA interfaces`}},
		{"ENA counter names from another driver", "ena-2.8.1g.txt", "ixgbevf", "4.1.0-k", Interface{
			Reason: `driver "ixgbevf" is not ena: the allowance counters exist only on ENA interfaces`}},
	}
	for _, tt := range tests {
		got := Judge("eth0", Stats{Driver: tt.driver, Version: tt.version, Values: fixture(t, tt.file)})
		tt.want.Name, tt.want.Driver, tt.want.DriverVersion = "eth0", tt.driver, tt.version
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("%s: Judge (-want +got):\n%s", tt.name, d)
		}
	}
}

func TestParseStats(t *testing.T) {
	got := ParseStats([]byte("NIC statistics:\n     tx_timeout: 0\n  bad line\n name: -1\n : 4\n big: 18446744073709551615\n spaced : 7 \n"))
	want := map[string]uint64{"tx_timeout": 0, "big": 1<<64 - 1, "spaced": 7}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ParseStats (-want +got):\n%s", d)
	}
	if v := Judge("eth0", Stats{Driver: "ena", Version: "2.8.1g", Values: map[string]uint64{LinkLocalExceeded: 1<<64 - 1}}).Counters[LinkLocalExceeded]; v != 1<<63-1 {
		t.Errorf("a counter past int64 reads %d; want it clamped", v)
	}
}

func FuzzParseStats(f *testing.F) {
	for _, name := range []string{"ena-2.8.1g.txt", "ena-2.1.0K-old.txt", "veth.txt"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "2.8.1g")
	}
	f.Add([]byte("linklocal_allowance_exceeded: 99999999999999999999\n::\n"), "2.")
	f.Fuzz(func(t *testing.T, data []byte, version string) {
		m := ParseStats(data)
		for k := range m {
			if k == "" || strings.TrimSpace(k) != k {
				t.Fatalf("name %q kept", k)
			}
		}
		in := Judge("eth0", Stats{Driver: "ena", Version: version, Values: m})
		if in.Available == (in.Reason != "") {
			t.Fatalf("available %v with reason %q", in.Available, in.Reason)
		}
		for c, v := range in.Counters {
			if v < 0 {
				t.Fatalf("counter %s = %d", c, v)
			}
		}
	})
}

func ena(ll, pps int64, version string) Interface {
	return Interface{Name: "ens5", Driver: "ena", DriverVersion: version, Available: true, Counters: map[string]int64{
		LinkLocalExceeded: ll, "pps_allowance_exceeded": pps, ConntrackAvailable: 1000}}
}

// TestTrack runs samples one after the other against one state directory.
func TestTrack(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)
	type step struct {
		in         []Interface
		window     float64
		linklocal  int64
		deltas     map[string]int64
		reset      bool
		stateWrite bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first run, then rising", []step{
			{in: []Interface{ena(10, 0, "2.8.1g")}, stateWrite: true},
			{in: []Interface{ena(25, 2, "2.8.1g")}, window: 60, linklocal: 15, stateWrite: true,
				deltas: map[string]int64{LinkLocalExceeded: 15, "pps_allowance_exceeded": 2}},
		}},
		{"counter went back", []step{
			{in: []Interface{ena(500, 9, "2.8.1g")}, stateWrite: true},
			{in: []Interface{ena(4, 9, "2.8.1g")}, window: 60, linklocal: 4, reset: true, stateWrite: true,
				deltas: map[string]int64{LinkLocalExceeded: 4, "pps_allowance_exceeded": 9}},
		}},
		{"driver reloaded with a new version", []step{
			{in: []Interface{ena(3, 0, "2.8.1g")}, stateWrite: true},
			{in: []Interface{ena(7, 0, "2.13.0g")}, window: 60, linklocal: 7, reset: true, stateWrite: true,
				deltas: map[string]int64{LinkLocalExceeded: 7, "pps_allowance_exceeded": 0}},
		}},
		{"no ENA: state.json is never written", []step{
			{in: []Interface{{Name: "veth0", Driver: "veth", Reason: "not ena"}}},
			{in: []Interface{{Name: "veth0", Driver: "veth", Reason: "not ena"}}},
		}},
		{"an interface appears", []step{
			{in: []Interface{{Name: "veth0", Driver: "veth", Reason: "not ena"}}},
			{in: []Interface{ena(3, 0, "2.8.1g")}, stateWrite: true},
			{in: []Interface{ena(3, 0, "2.8.1g")}, window: 60, stateWrite: true,
				deltas: map[string]int64{LinkLocalExceeded: 0, "pps_allowance_exceeded": 0}},
		}},
	}
	for _, tt := range tests {
		p := paths.New(t.TempDir())
		p.StateDir = "/var/lib/imdsmend"
		file := p.State(StateFile)
		for i, s := range tt.steps {
			n := track(Config{Paths: p, Now: t0.Add(time.Duration(i) * time.Minute)}, s.in)
			if n.StateError != "" {
				t.Errorf("%s, step %d: state error %s", tt.name, i, n.StateError)
			}
			if n.WindowSeconds != s.window || n.LinkLocalExceededDelta != s.linklocal {
				t.Errorf("%s, step %d: window %v, linklocal delta %d; want %v, %d", tt.name, i, n.WindowSeconds, n.LinkLocalExceededDelta, s.window, s.linklocal)
			}
			if d := cmp.Diff(s.deltas, n.Interfaces[0].Deltas); d != "" || n.Interfaces[0].Reset != s.reset {
				t.Errorf("%s, step %d: reset %v (want %v), deltas (-want +got):\n%s", tt.name, i, n.Interfaces[0].Reset, s.reset, d)
			}
			_, err := os.Stat(file)
			if written := err == nil; written != s.stateWrite && !(i > 0 && tt.steps[i-1].stateWrite) {
				t.Errorf("%s, step %d: state.json written %v; want %v", tt.name, i, written, s.stateWrite)
			}
		}
	}
}

// TestTrackKeepsOtherState: state.json is shared; a damaged nic key or file costs one
// run's deltas and is replaced, keeping the other keys when the file is an object.
func TestTrackKeepsOtherState(t *testing.T) {
	tests := []struct {
		name, before, errPart string
		keeps                 bool
	}{
		{"other keys", `{"watch":{"x":1}}`, "", true},
		{"damaged nic key", `{"watch":{"x":1},"nic":[1]}`, `its "nic" key is damaged`, true},
		{"not JSON", `{"watch":`, "is not a JSON object", false},
	}
	for _, tt := range tests {
		p := paths.New(t.TempDir())
		p.StateDir = "/state"
		if err := os.MkdirAll(p.File("/state"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p.State(StateFile), []byte(tt.before), 0o600); err != nil {
			t.Fatal(err)
		}
		n := track(Config{Paths: p, Now: time.Now()}, []Interface{ena(1, 0, "2.8.1g")})
		if !strings.Contains(n.StateError, tt.errPart) || (tt.errPart == "") != (n.StateError == "") {
			t.Errorf("%s: state error %q; want one with %q", tt.name, n.StateError, tt.errPart)
		}
		data, err := os.ReadFile(p.State(StateFile))
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: state.json is now %q: %v", tt.name, data, err)
		}
		if _, ok := doc["watch"]; ok != tt.keeps {
			t.Errorf("%s: the watch key kept %v; want %v", tt.name, ok, tt.keeps)
		}
		if n2 := track(Config{Paths: p, Now: time.Now()}, []Interface{ena(1, 0, "2.8.1g")}); n2.StateError != "" || n2.Interfaces[0].Deltas == nil {
			t.Errorf("%s: the next run: state error %q, deltas %v", tt.name, n2.StateError, n2.Interfaces[0].Deltas)
		}
	}
}

// TestTrackStateOutsideRoot: a state.json linked out of --root is refused, not followed.
func TestTrackStateOutsideRoot(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "host-state.json")
	if err := os.WriteFile(outside, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := paths.New(t.TempDir())
	p.StateDir = "/state"
	if err := os.MkdirAll(p.File("/state"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/../../../../../../.."+outside, p.State(StateFile)); err != nil {
		t.Fatal(err)
	}
	track(Config{Paths: p, Now: time.Now()}, []Interface{ena(1, 0, "2.8.1g")})
	if got, _ := os.ReadFile(outside); string(got) != "{}" {
		t.Errorf("the file outside the root now holds %q", got)
	}
}

// TestReadVeth runs the real ethtool ioctls in a network namespace of its own holding a
// veth pair: veth is not ENA, so both ends are unavailable with the reason.
func TestReadVeth(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := netns.New() // this thread only, left below
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			t.Fatalf("back to the original namespace: %v", err) // the thread stays locked, and dies
		}
		ns.Close()
		orig.Close()
		runtime.UnlockOSThread()
	}()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "nic0"}, PeerName: "nic1"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	p := paths.New(t.TempDir())
	n, err := Read(context.Background(), Config{Paths: p, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	want := []Interface{
		{Name: "nic0", Driver: "veth", DriverVersion: "1.0", Reason: `driver "veth" is not ena: the allowance counters exist only on ENA interfaces`},
		{Name: "nic1", Driver: "veth", DriverVersion: "1.0", Reason: `driver "veth" is not ena: the allowance counters exist only on ENA interfaces`},
	}
	if d := cmp.Diff(want, n.Interfaces); d != "" {
		t.Errorf("interfaces (-want +got):\n%s", d)
	}
	if entries, _ := os.ReadDir(p.Root); len(entries) != 0 {
		t.Errorf("the root holds %v; want nothing written without ENA", entries)
	}
}

// fakeDriver answers for the interfaces it knows; the others are gone (ENODEV).
type fakeDriver map[string]struct {
	info  ethtool.DrvInfo
	stats map[string]uint64
	err   error // from Stats
}

func (f fakeDriver) DriverInfo(name string) (ethtool.DrvInfo, error) {
	d, ok := f[name]
	if !ok {
		return ethtool.DrvInfo{}, unix.ENODEV
	}
	return d.info, nil
}

func (f fakeDriver) Stats(name string) (map[string]uint64, error) {
	d, ok := f[name]
	if !ok {
		return nil, unix.ENODEV
	}
	return d.stats, d.err
}

// TestReadInterfaces: an interface that vanishes between listing and reading (at either
// ioctl) is left out; one whose statistics fail otherwise is listed with the error.
func TestReadInterfaces(t *testing.T) {
	stats := fixture(t, "ena-2.8.1g.txt")
	et := fakeDriver{
		"ens5":  {info: ethtool.DrvInfo{Driver: "ena", Version: "2.8.1g"}, stats: stats},
		"ens6":  {info: ethtool.DrvInfo{Driver: "ena", Version: "2.8.1g"}, err: unix.EOPNOTSUPP},
		"ens7":  {info: ethtool.DrvInfo{Driver: "ena", Version: "2.8.1g"}, err: unix.ENODEV},
		"veth0": {info: ethtool.DrvInfo{Driver: "veth", Version: "1.0"}},
	}
	ins, err := readInterfaces(context.Background(), et, []string{"veth0", "ens6", "gone", "ens5", "ens7"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range ins {
		got = append(got, fmt.Sprintf("%s available=%v %s", in.Name, in.Available, in.Reason))
	}
	want := []string{
		"ens5 available=true ",
		"ens6 available=false ethtool -S ens6: operation not supported",
		`veth0 available=false driver "veth" is not ena: the allowance counters exist only on ENA interfaces`,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("interfaces (-want +got):\n%s", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := readInterfaces(ctx, et, []string{"ens5"}); err == nil {
		t.Error("a cancelled context: no error")
	}
}
