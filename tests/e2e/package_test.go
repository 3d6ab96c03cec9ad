package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackage builds the packages with `make package` and installs the .deb into a
// scratch root (dpkg --root, maintainer scripts run chrootless with DPKG_ROOT set, so
// they change only that tree; never this host's /): install enables the boot pass and
// the timer, an upgrade keeps an edited policy and the admin's unit choice, removal
// disables every unit and keeps the policy, purge removes it.
func TestPackage(t *testing.T) {
	for _, tool := range []string{"dpkg", "dpkg-deb", "make", "systemctl", "rpm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install dpkg make systemd rpm)", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("dpkg --root needs root")
	}
	deb := map[string]string{}
	for _, v := range []string{"0.0.1", "0.0.2"} {
		var rpm string
		deb[v], rpm = makePackages(t, v)
		if v == "0.0.1" {
			checkRPM(t, rpm)
		}
	}

	info := output(t, "dpkg-deb", "-I", deb["0.0.1"])
	for _, want := range []string{"Package: imdsmend", "Version: 0.0.1-1", "Section: admin", "postinst", "prerm", "postrm"} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb -I lacks %q:\n%s", want, info)
		}
	}
	if conffiles := output(t, "dpkg-deb", "--info", deb["0.0.1"], "conffiles"); strings.TrimSpace(conffiles) != "/etc/imdsmend/policy.hcl" {
		t.Errorf("conffiles = %q, want the policy only", conffiles)
	}
	contents := output(t, "dpkg-deb", "-c", deb["0.0.1"])
	for _, want := range []string{"./usr/bin/imdsmend", "./usr/lib/systemd/system/imdsmend-boot.service",
		"./usr/lib/systemd/system/imdsmend.service", "./usr/lib/systemd/system/imdsmend.timer",
		"./usr/lib/systemd/system/imdsmend-watch.service", "./usr/lib/systemd/system/imdsmend-boot.service.d/debian.conf",
		"./usr/lib/systemd/catalog/imdsmend.catalog", "./etc/imdsmend/policy.hcl", "./etc/imdsmend/policy.d/",
		"./usr/share/doc/imdsmend/install.md", "./usr/share/doc/imdsmend/operating.md",
		"./usr/share/man/man8/imdsmend.8", "./usr/share/man/man8/imdsmend-apply.8"} {
		if !strings.Contains(contents, want+"\n") && !strings.Contains(contents, want+" ") {
			t.Errorf("dpkg-deb -c lacks %s", want)
		}
	}

	hostBefore := hostUnitLinks(t)
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "etc/systemd/system"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dpkg := func(args ...string) {
		t.Helper()
		cmd := exec.Command("dpkg", append([]string{"--root=" + root, "--force-script-chrootless", "--force-confold", "--log=/dev/null"}, args...)...)
		cmd.Env = append(os.Environ(), "DPKG_ROOT="+root, "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("dpkg %v: %v\n%s", args, err, out)
		}
	}
	in := func(p string) string { return filepath.Join(root, p) }
	bootLink := in("etc/systemd/system/sysinit.target.wants/imdsmend-boot.service")
	timerLink := in("etc/systemd/system/timers.target.wants/imdsmend.timer")

	// Install: boot pass and timer enabled, the catalog indexed.
	dpkg("-i", deb["0.0.1"])
	for _, p := range []string{bootLink, timerLink, in("var/lib/systemd/catalog/database"), in("etc/imdsmend/policy.hcl")} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("after install: %v", err)
		}
	}
	if _, err := os.Lstat(in("etc/systemd/system/multi-user.target.wants/imdsmend-watch.service")); err == nil {
		t.Error("install enabled imdsmend-watch.service too; a host runs the timer or watch")
	}
	validate := exec.Command(in("usr/bin/imdsmend"), "validate", "--policy", in("etc/imdsmend/policy.hcl"))
	validate.Env = append(os.Environ(), "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1")
	if out, err := validate.CombinedOutput(); err != nil {
		t.Errorf("the installed binary rejects the installed policy: %v\n%s", err, out)
	}

	// The admin edits the policy and picks watch over the timer; the upgrade keeps both.
	edited := append(readFile(t, in("etc/imdsmend/policy.hcl")), "# edited on this host\n"...)
	if err := os.WriteFile(in("etc/imdsmend/policy.hcl"), edited, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(timerLink); err != nil {
		t.Fatal(err)
	}
	dpkg("-i", deb["0.0.2"])
	if got := readFile(t, in("etc/imdsmend/policy.hcl")); !bytes.Equal(got, edited) {
		t.Error("the upgrade replaced the edited /etc/imdsmend/policy.hcl")
	}
	if _, err := os.Lstat(timerLink); err == nil {
		t.Error("the upgrade enabled imdsmend.timer again, which the admin had disabled")
	}
	if status := string(readFile(t, in("var/lib/dpkg/status"))); !strings.Contains(status, "Version: 0.0.2-1") {
		t.Errorf("dpkg status after the upgrade:\n%s", status)
	}

	// Removal disables every unit and keeps the conffile; purge takes it and the state.
	if err := os.MkdirAll(in("var/lib/imdsmend"), 0o700); err != nil {
		t.Fatal(err)
	}
	dpkg("-r", "imdsmend")
	for _, p := range []string{bootLink, in("usr/bin/imdsmend"), in("usr/lib/systemd/system/imdsmend-boot.service")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("after removal %s is still there", p)
		}
	}
	if _, err := os.Stat(in("etc/imdsmend/policy.hcl")); err != nil {
		t.Errorf("removal (not purge) took the policy: %v", err)
	}
	dpkg("-P", "imdsmend")
	for _, p := range []string{in("etc/imdsmend/policy.hcl"), in("var/lib/imdsmend")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("after purge %s is still there", p)
		}
	}
	if after := hostUnitLinks(t); after != hostBefore {
		t.Errorf("the maintainer scripts changed this host's /etc/systemd/system:\nbefore %s\nafter  %s", hostBefore, after)
	}
}

// checkRPM reads the .rpm with rpm itself (a scratch database: Debian's rpm would make
// one in ~/.rpmdb). The install, upgrade and erase on a running system are in
// TestBootBeforeCloudInit.
func checkRPM(t *testing.T, path string) {
	t.Helper()
	rpm := func(args ...string) string {
		return output(t, "rpm", append([]string{"--dbpath", t.TempDir(), "-qp"}, append(args, path)...)...)
	}
	if requires := rpm("--requires"); strings.TrimSpace(requires) != "" {
		t.Errorf("the .rpm requires %q; it should install on any systemd distribution without --nodeps", requires)
	}
	files := rpm("--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]")
	for _, want := range []string{"/usr/bin/imdsmend ", "/usr/lib/systemd/system/imdsmend-boot.service ",
		"/usr/lib/systemd/system/imdsmend.timer ", "/usr/lib/systemd/system/imdsmend-watch.service ",
		"/usr/lib/systemd/catalog/imdsmend.catalog ", "/etc/imdsmend/policy.hcl cn\n", "/usr/share/man/man8/imdsmend.8 "} {
		if !strings.Contains(files, want) {
			t.Errorf("%s lacks %q (c: config, n: noreplace):\n%s", filepath.Base(path), want, files)
		}
	}
	if strings.Contains(files, "debian.conf") {
		t.Errorf("%s carries the Debian-only drop-in (an ordering cycle on RHEL)", filepath.Base(path))
	}
	scripts := rpm("--scripts")
	for _, want := range []string{"postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet",
		"journalctl --update-catalog", "enable imdsmend-boot.service imdsmend.timer"} {
		if !strings.Contains(scripts, want) {
			t.Errorf("%s's scriptlets lack %q", filepath.Base(path), want)
		}
	}
}

// hostUnitLinks lists imdsmend's enablement links on this host, which no test may create.
func hostUnitLinks(t *testing.T) string {
	t.Helper()
	links, err := filepath.Glob("/etc/systemd/system/*/imdsmend*")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(links, " ")
}

func output(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
