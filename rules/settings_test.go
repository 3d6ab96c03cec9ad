package rules

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/facts/imds"
	"github.com/imdsmend/imdsmend/internal/types"
)

func TestSettings(t *testing.T) {
	defaults := defaultSettings()
	tests := []struct {
		name  string
		files []string
		want  Settings
	}{
		{name: "defaults deny every change", files: []string{"policy.hcl", ""}, want: defaults},
		{
			name:  "report mode",
			files: []string{"policy.hcl", `settings { mode = "report" }`},
			want:  Settings{Mode: ModeReport, Interval: defaults.Interval, ProbeTimeout: defaults.ProbeTimeout, NICInterval: defaults.NICInterval},
		},
		{
			name: "every setting",
			files: []string{"policy.hcl", `settings {
  mode          = "enforce"
  interval      = "1m"
  probe_timeout = "3s"
  ipv6          = true
  nic_interval  = "30s"
  imds {
    connect_timeout = "500ms"
    header_timeout  = "1s"
    attempts        = 4
  }
  allow {
    firewall      = true
    files         = true
    ec2_api       = true
    routes        = true
    restart_units = true
  }
}`},
			want: Settings{
				Mode: ModeEnforce, Interval: time.Minute, ProbeTimeout: 3 * time.Second, IPv6: true, NICInterval: 30 * time.Second,
				IMDS:  imds.Timeouts{Connect: 500 * time.Millisecond, Header: time.Second, MaxAttempts: 4},
				Allow: Allow{Firewall: true, Files: true, EC2API: true, Routes: true, RestartUnits: true},
			},
		},
		{
			name: "drop-ins override attribute by attribute, allow switch by switch",
			files: []string{
				"policy.hcl", `settings {
  interval = "1m"
  allow {
    firewall = true
    files    = true
  }
}`,
				"policy.d/10-report.hcl", `settings { mode = "report" }`,
				"policy.d/20-nofiles.hcl", `settings {
  allow { files = false }
  imds { attempts = 2 }
}`,
			},
			want: Settings{
				Mode: ModeReport, Interval: time.Minute, ProbeTimeout: defaults.ProbeTimeout, NICInterval: defaults.NICInterval,
				IMDS:  imds.Timeouts{MaxAttempts: 2},
				Allow: Allow{Firewall: true},
			},
		},
		{
			name: "restart_units as a list of unit globs; a later true goes back to the units' own files",
			files: []string{"policy.hcl", `settings {
  allow { restart_units = ["docker.service", "*-agent.service"] }
}`},
			want: Settings{Mode: ModeEnforce, Interval: defaults.Interval, ProbeTimeout: defaults.ProbeTimeout, NICInterval: defaults.NICInterval,
				Allow: Allow{RestartUnits: true, RestartUnitGlobs: []string{"docker.service", "*-agent.service"}}},
		},
		{
			name: "an empty restart_units list allows no restart",
			files: []string{"policy.hcl", `settings {
  allow { restart_units = true }
}`, "policy.d/10-none.hcl", `settings {
  allow { restart_units = [] }
}`},
			want: Settings{Mode: ModeEnforce, Interval: defaults.Interval, ProbeTimeout: defaults.ProbeTimeout, NICInterval: defaults.NICInterval,
				Allow: Allow{RestartUnitGlobs: []string{}}},
		},
		{
			name: "true after a list",
			files: []string{"policy.hcl", `settings {
  allow { restart_units = ["docker.service"] }
}`, "policy.d/10-true.hcl", `settings {
  allow { restart_units = true }
}`},
			want: Settings{Mode: ModeEnforce, Interval: defaults.Interval, ProbeTimeout: defaults.ProbeTimeout, NICInterval: defaults.NICInterval,
				Allow: Allow{RestartUnits: true}},
		},
		{
			name: "ec2: region, role and how long an answer is kept; a drop-in overrides one",
			files: []string{"policy.hcl", `settings {
  ec2 {
    region      = "eu-west-1"
    instance_id = "i-0123456789abcdef0"
    role_arn    = "arn:aws:iam::123456789012:role/imdsmend"
    interval    = "15m"
  }
}`, "policy.d/10-region.hcl", `settings {
  ec2 { region = "eu-central-1" }
}`},
			want: Settings{Mode: ModeEnforce, Interval: defaults.Interval, ProbeTimeout: defaults.ProbeTimeout, NICInterval: defaults.NICInterval,
				EC2: EC2Settings{Region: "eu-central-1", InstanceID: "i-0123456789abcdef0", RoleARN: "arn:aws:iam::123456789012:role/imdsmend", Interval: 15 * time.Minute}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, tt.files...)
			if diff := cmp.Diff(tt.want, p.Settings); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPermits(t *testing.T) {
	a := Allow{Firewall: true, EC2API: true}
	got := map[types.Permission]bool{}
	for _, perm := range append(types.Permissions(), "reboot") {
		got[perm] = a.Permits(perm)
	}
	want := map[types.Permission]bool{types.PermFirewall: true, types.PermFiles: false, types.PermEC2API: true, types.PermRoutes: false, types.PermRestartUnits: false, "reboot": false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Permits (-want +got):\n%s", diff)
	}
}
