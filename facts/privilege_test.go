package facts

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/imdsmend/imdsmend/facts/firewall"
	"github.com/imdsmend/imdsmend/internal/types"
)

func TestMissingPrivileges(t *testing.T) {
	tests := []struct {
		name, status, root string
		want               []string
	}{
		{"root", "CapEff:\t000001ffffffffff\n", "/", nil},
		{"an ordinary user", "Uid:\t65534\nCapEff:\t0000000000000000\n", "/", []string{"firewall", "proxy", "containers"}},
		{"a tree under --root needs no ptrace", "CapEff:\t0000000000000000\n", "/srv/image", []string{"firewall"}},
		{"CAP_NET_ADMIN only (1<<12)", "CapEff:\t0000000000001000\n", "/", []string{"proxy", "containers"}},
		{"CAP_SYS_PTRACE only (1<<19)", "CapEff:\t0000000000080000\n", "", []string{"firewall", "containers"}},
		{"CAP_SYS_ADMIN and CAP_SYS_PTRACE (1<<21, 1<<19)", "CapEff:\t0000000000281000\n", "/", nil},
		{"unreadable capabilities: let the probes try", "Name:\tx\n", "/", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, p := range missingPrivileges([]byte(tt.status), tt.root) {
			got = append(got, p.Probe)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: missing %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestGatherSkipsUnprivilegedProbes: a probe whose privilege the process lacks is not run;
// its section stays null and its result says which capability it needed.
func TestGatherSkipsUnprivilegedProbes(t *testing.T) {
	probes := []Probe{
		funcProbe{"imds", func(_ context.Context, f *Facts) error {
			f.IMDS = &types.IMDS{Class: types.ClassOK}
			return nil
		}},
		funcProbe{"firewall", func(_ context.Context, f *Facts) error {
			t.Error("the firewall probe ran without CAP_NET_ADMIN")
			f.Firewall = &firewall.Firewall{}
			return nil
		}},
	}
	f := Gather(context.Background(), Config{Timeout: 2 * time.Second, Missing: Privileges[:1]}, probes)
	if f.IMDS == nil || f.Firewall != nil {
		t.Errorf("imds %v, firewall %v; want imds only", f.IMDS, f.Firewall)
	}
	want := "not run: this process lacks CAP_NET_ADMIN (not root?)"
	if r := f.Probes["firewall"]; r.OK || r.Error != want {
		t.Errorf("firewall probe result %+v, want error %q", r, want)
	}
}
