package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// unit is a unit file's ordering, as a distribution ships it; the service does nothing.
func unit(ordering string) string {
	return "[Unit]\n" + ordering + "\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n"
}

// Early-boot neighbours of imdsmend-boot.service, ordering as each family ships them.
var (
	// cloud-init's Debian/Ubuntu/unknown variant (and Amazon Linux 2's): both stages run
	// before sysinit.target.
	cloudInit = map[string]string{
		"cloud-init-local.service": unit("DefaultDependencies=no\nWants=network-pre.target\nAfter=systemd-remount-fs.service\nBefore=network-pre.target shutdown.target sysinit.target\nConflicts=shutdown.target"),
		"cloud-init.service":       unit("DefaultDependencies=no\nWants=cloud-init-local.service\nAfter=cloud-init-local.service systemd-networkd-wait-online.service\nBefore=network-online.target sysinit.target shutdown.target\nConflicts=shutdown.target"),
	}
	// Debian and Ubuntu's firewall loaders all run early.
	debianFirewalls = map[string]string{
		"netfilter-persistent.service": unit("DefaultDependencies=no\nWants=network-pre.target systemd-modules-load.service local-fs.target\nBefore=network-pre.target shutdown.target\nAfter=systemd-modules-load.service local-fs.target\nConflicts=shutdown.target"),
		"nftables.service":             unit("DefaultDependencies=no\nWants=network-pre.target\nBefore=network-pre.target shutdown.target\nConflicts=shutdown.target"),
		"ufw.service":                  unit("DefaultDependencies=no\nBefore=network-pre.target\nWants=network-pre.target local-fs.target\nAfter=local-fs.target"),
	}
	// RHEL, Fedora and Amazon Linux's have default dependencies: after sysinit.target.
	rhelFirewalls = map[string]string{
		"iptables.service":  unit("Before=network-pre.target\nWants=network-pre.target"),
		"ip6tables.service": unit("Before=network-pre.target\nWants=network-pre.target"),
		"nftables.service":  unit("Wants=network-pre.target\nBefore=network-pre.target"),
		"firewalld.service": unit("Wants=network-pre.target\nBefore=network-pre.target\nAfter=dbus.service polkit.service"),
	}
)

// TestUnitsVerify runs systemd-analyze verify over the shipped units, with ExecStart
// pointing at the binary under test, so a typo in a directive fails here and not on a
// fleet's first boot; and over a boot that starts them with the firewall and cloud-init
// units of each distribution family enabled, so an ordering cycle (which systemd breaks
// by silently dropping a job) fails here too.
func TestUnitsVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd)")
	}
	src := filepath.Join(moduleRoot(t), "packaging", "systemd")
	exe := unitsExecutable(t, src)
	tests := []struct {
		name      string
		neighbour []map[string]string
		dropIns   bool // the Debian drop-in is installed
	}{
		{"debian", []map[string]string{cloudInit, debianFirewalls}, true},
		{"rhel", []map[string]string{cloudInit, rhelFirewalls}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var units []string
			for _, pattern := range []string{"*.service", "*.timer"} {
				matches, err := filepath.Glob(filepath.Join(src, pattern))
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range matches {
					data, err := os.ReadFile(m)
					if err != nil {
						t.Fatal(err)
					}
					text := strings.ReplaceAll(string(data), exe, bins.Imdsmend)
					units = append(units, writeUnit(t, dir, filepath.Base(m), text))
				}
			}
			for _, want := range []string{"imdsmend-boot.service", "imdsmend.service", "imdsmend.timer", "imdsmend-watch.service"} {
				if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
					t.Errorf("packaging/systemd/%s is missing", want)
				}
			}
			if tt.dropIns {
				data, err := os.ReadFile(filepath.Join(src, "imdsmend-boot.service.d/debian.conf"))
				if err != nil {
					t.Fatal(err)
				}
				writeUnit(t, dir, "imdsmend-boot.service.d/debian.conf", string(data))
			}
			// What an instance starts at boot: these neighbours, the boot pass and the timer.
			wants := []string{"imdsmend-boot.service", "imdsmend.timer"}
			for _, set := range tt.neighbour {
				for name, text := range set {
					writeUnit(t, dir, name, text)
					wants = append(wants, name)
				}
			}
			boot := writeUnit(t, dir, "imdsmend-test-boot.target", "[Unit]\nWants="+strings.Join(wants, " ")+"\n")
			cmd := exec.Command("systemd-analyze", append([]string{"verify", "--man=no", boot}, units...)...)
			cmd.Dir = dir
			// The units here first, then the system's (sysinit.target and the like).
			cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":")
			if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
				t.Errorf("systemd-analyze verify: %v\n%s", err, out)
			}
		})
	}
}

// unitsExecutable is the one path every unit starts imdsmend from, which the README's
// Install section must install to.
func unitsExecutable(t *testing.T, src string) string {
	t.Helper()
	units, err := filepath.Glob(filepath.Join(src, "*.service"))
	if err != nil {
		t.Fatal(err)
	}
	execStart := regexp.MustCompile(`(?m)^ExecStart=(\S*/imdsmend)\b`)
	exe := ""
	for _, u := range units {
		data, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range execStart.FindAllStringSubmatch(string(data), -1) {
			if exe != "" && m[1] != exe {
				t.Errorf("%s starts %s, other units %s", filepath.Base(u), m[1], exe)
			}
			exe = m[1]
		}
	}
	if exe == "" {
		t.Fatal("no unit in packaging/systemd/ starts imdsmend")
	}
	readme, err := os.ReadFile(filepath.Join(moduleRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	install := regexp.MustCompile(`(?m)^sudo install -m 0755 bin/imdsmend (\S+)`).FindSubmatch(readme)
	if install == nil || filepath.Join(string(install[1]), "imdsmend") != exe {
		t.Errorf("README.md installs imdsmend with %q; the units start %s", install, exe)
	}
	return exe
}

func writeUnit(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestUnitsSecurity keeps the services' hardening from eroding: systemd-analyze security
// scores each unit file as shipped (--offline) and fails above the exposure docs/install.md
// records.
func TestUnitsSecurity(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd)")
	}
	units, err := filepath.Glob(filepath.Join(moduleRoot(t), "packaging", "systemd", "*.service"))
	if err != nil || len(units) == 0 {
		t.Fatalf("no units in packaging/systemd: %v", err)
	}
	for _, u := range units {
		out, err := exec.Command("systemd-analyze", "security", "--offline=yes", "--threshold=35", "--no-pager", u).CombinedOutput()
		if err != nil {
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			t.Errorf("systemd-analyze security %s: %v: %s", filepath.Base(u), err, lines[len(lines)-1])
		}
	}
}
