package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/imdsmend/imdsmend/tests/harness"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
	"github.com/imdsmend/imdsmend/tests/tree"
)

// The Debian image the boot test starts: debootstrap's minimal base and what a cloud
// instance runs at boot (python3-cffi-backend: debootstrap cannot resolve a virtual
// dependency of cloud-init without it; rpm: the .rpm's upgrade and removal run on the
// booted system). Built once, then kept in bootCacheDir (a CI
// cache keeps it between runs); the name changes with the list.
var bootPackages = []string{"systemd", "systemd-sysv", "dbus", "iptables", "cloud-init", "curl", "python3-cffi-backend", "rpm"}

const bootCacheDir = "/var/cache/imdsmend-test"

// The blocker baked into the image: the firewall rule of the article, added before the
// network comes up and before imdsmend's boot pass.
const blockerUnit = `[Unit]
DefaultDependencies=no
After=local-fs.target
Before=network-pre.target imdsmend-boot.service cloud-init-local.service
Wants=network-pre.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/iptables -A OUTPUT -p tcp -d 169.254.169.254 -j REJECT
[Install]
WantedBy=sysinit.target
`

// cloud-init for the Ec2 datasource on a machine that is not EC2: strict_id off, a short
// wait, the network left as the namespace has it, and no locale (its module fails in a
// minimal image).
const cloudCfg = `datasource_list: [ Ec2, None ]
datasource:
  Ec2:
    strict_id: false
    metadata_urls: [ "http://169.254.169.254" ]
    timeout: 2
    max_wait: 10
network: {config: disabled}
locale: false
`

const userData = `#cloud-config
runcmd:
  - [touch, /var/lib/user-data-ran]
`

// TestBootBeforeCloudInit boots a Debian image under systemd-nspawn whose firewall
// rejects IMDS before the network comes up, one veth hop from a namespace where the
// simulator serves 169.254.169.254 (dated API paths and user data, as cloud-init asks for
// them). Without imdsmend cloud-init falls back to DataSourceNone and the user data never
// runs; with the package installed (the .deb through dpkg, the .rpm through rpm, each
// package's own scripts run for real) the boot pass removes the rule first: cloud-init
// finds DataSourceEc2 and runs the user data's runcmd. It also checks the units under a
// real systemd, and the .rpm's upgrade and removal on the running system.
func TestBootBeforeCloudInit(t *testing.T) {
	rootfs, pkg := bootSetup(t)

	t.Run("without imdsmend", func(t *testing.T) {
		c := bootImage(t, rootfs, "", nil)
		if ds := c.datasource(t); ds != "DataSourceNone" {
			t.Errorf("cloud-init datasource = %q, want DataSourceNone (the blocker should have kept IMDS out of reach)", ds)
		}
		if c.exists("/var/lib/user-data-ran") {
			t.Error("the user data ran although IMDS was blocked")
		}
	})

	// The package installed but its boot pass masked: cloud-init misses the metadata as
	// without imdsmend, and imdsmend check says so afterwards.
	t.Run("with the boot pass masked", func(t *testing.T) {
		c := bootImage(t, rootfs, pkg.deb, nil, "imdsmend-boot.service")
		if ds := c.datasource(t); ds != "DataSourceNone" {
			t.Errorf("cloud-init datasource = %q, want DataSourceNone", ds)
		}
		if out := c.sh(t, "imdsmend check --only cloud_init_missed_metadata; echo exit=$?"); !strings.Contains(out, "CRITICAL cloud_init_missed_metadata") || !strings.Contains(out, "exit=2") {
			t.Errorf("imdsmend check after a boot that missed the metadata:\n%s", out)
		}
	})

	t.Run("with imdsmend", func(t *testing.T) {
		c := bootImage(t, rootfs, pkg.deb, nil)
		c.checkMended(t)
		// watch under systemd, hardened: it reaches active (READY=1) and states its status;
		// starting it stops the timer.
		c.sh(t, "systemctl start imdsmend-watch.service")
		if state := strings.TrimSpace(c.sh(t, "systemctl is-active imdsmend-watch.service")); state != "active" {
			t.Errorf("imdsmend-watch.service is %q\n%s", state, c.sh(t, "systemctl status imdsmend-watch.service --no-pager"))
		}
		if status := c.sh(t, "systemctl show -P StatusText imdsmend-watch.service"); strings.TrimSpace(status) == "" {
			t.Error("imdsmend-watch.service has no StatusText")
		}
		if state := strings.TrimSpace(c.sh(t, "systemctl is-active imdsmend.timer")); state == "active" {
			t.Error("imdsmend.timer still active with imdsmend-watch.service running")
		}
	})

	// The .rpm: installed into the image by this host's rpm --root (its scriptlets run
	// chrooted in the image: the catalog indexed, boot pass and timer enabled), booted
	// with the same outcome as the .deb; then upgraded and erased by the image's own rpm
	// on the running system, whose scriptlets talk to its systemd.
	t.Run("with imdsmend from the rpm", func(t *testing.T) {
		c := bootImage(t, rootfs, pkg.rpm, nil)
		c.checkMended(t)

		// The admin edits the policy and runs watch; the upgrade keeps the edit (the
		// policy is %config(noreplace)) and restarts the running watch on the new binary.
		policy := filepath.Join(c.root, "etc/imdsmend/policy.hcl")
		edited := append(readFile(t, policy), "# edited on this host\n"...)
		if err := os.WriteFile(policy, edited, 0o644); err != nil {
			t.Fatal(err)
		}
		c.sh(t, "systemctl start imdsmend-watch.service")
		started := c.monotonic(t, "imdsmend-watch.service", "ExecMainStartTimestampMonotonic")
		_, next := makePackages(t, "0.0.2")
		c.rpm(t, "-U", next)
		if got := readFile(t, policy); !bytes.Equal(got, edited) {
			t.Error("rpm -U replaced the edited /etc/imdsmend/policy.hcl")
		}
		if v := c.rpm(t, "-q", "--qf", "%{VERSION}", "imdsmend"); v != "0.0.2" {
			t.Errorf("rpm -q after the upgrade: %s", v)
		}
		if state := strings.TrimSpace(c.sh(t, "systemctl is-active imdsmend-watch.service")); state != "active" {
			t.Errorf("imdsmend-watch.service is %q after the upgrade", state)
		}
		if again := c.monotonic(t, "imdsmend-watch.service", "ExecMainStartTimestampMonotonic"); again <= started {
			t.Errorf("the upgrade did not restart the running watch (started at %dµs, now %dµs)", started, again)
		}

		// Erase: every unit stopped and disabled, the files gone, the edited policy kept
		// as policy.hcl.rpmsave.
		c.rpm(t, "-e", "imdsmend")
		units := "imdsmend-boot.service imdsmend.timer imdsmend.service imdsmend-watch.service"
		for _, state := range strings.Fields(c.sh(t, "systemctl is-active "+units)) {
			if state != "inactive" {
				t.Errorf("after rpm -e, systemctl is-active %s: %s", units, state)
			}
		}
		if links := c.sh(t, "ls /etc/systemd/system/*/imdsmend* 2>/dev/null"); strings.TrimSpace(links) != "" {
			t.Errorf("after rpm -e these units are still enabled:\n%s", links)
		}
		for _, p := range []string{"/usr/bin/imdsmend", "/usr/lib/systemd/system/imdsmend-boot.service"} {
			if c.exists(p) {
				t.Errorf("after rpm -e %s is still there", p)
			}
		}
		if got, err := os.ReadFile(policy + ".rpmsave"); err != nil || !bytes.Equal(got, edited) {
			t.Errorf("rpm -e did not keep the edited policy as policy.hcl.rpmsave: %v", err)
		}
	})
}

// checkMended asserts what a boot with imdsmend installed brings: cloud-init found its
// metadata and ran the user data, the boot pass finished before cloud-init began, the
// timer is scheduled, the journal carries the catalog and every unit passes verify.
func (c *container) checkMended(t *testing.T) {
	t.Helper()
	if ds := c.datasource(t); ds != "DataSourceEc2" {
		t.Errorf("cloud-init datasource = %q, want DataSourceEc2\n%s", ds, c.sh(t, "journalctl -b -t imdsmend --no-pager; grep -i 'DataSourceEc2\\|169.254\\|Searching\\|Looking for\\|platform' /var/log/cloud-init.log | head -40"))
	}
	if !c.exists("/var/lib/user-data-ran") {
		t.Error("the user data's runcmd did not run")
	}
	if out := c.sh(t, "imdsmend check --only cloud_init_missed_metadata; echo exit=$?"); !strings.Contains(out, "exit=0") {
		t.Errorf("imdsmend check after a boot that found the metadata:\n%s", out)
	}
	// The boot pass ended before cloud-init's first stage started …
	bootDone := c.monotonic(t, "imdsmend-boot.service", "ActiveEnterTimestampMonotonic")
	cloudStart := c.monotonic(t, "cloud-init-local.service", "InactiveExitTimestampMonotonic")
	if bootDone == 0 || cloudStart == 0 || bootDone > cloudStart {
		t.Errorf("imdsmend-boot.service active at %dµs, cloud-init-local.service started at %dµs", bootDone, cloudStart)
	}
	// … and is the link of cloud-init's critical chain that cloud-init-local waited for.
	chain := c.sh(t, "systemd-analyze critical-chain --no-pager cloud-init.service")
	if err := chainHas(chain, "cloud-init.service", "cloud-init-local.service", "imdsmend-boot.service"); err != nil {
		t.Errorf("systemd-analyze critical-chain cloud-init.service: %v\n%s", err, chain)
	}
	if state := strings.TrimSpace(c.sh(t, "systemctl is-active imdsmend.timer")); state != "active" {
		t.Errorf("imdsmend.timer is %q, want active", state)
	}
	if next := c.sh(t, "systemctl show -P NextElapseUSecMonotonic imdsmend.timer"); strings.TrimSpace(next) == "" || strings.TrimSpace(next) == "0" {
		t.Errorf("imdsmend.timer has no next elapse: %q", next)
	}
	if out := c.sh(t, "journalctl -b -x -t imdsmend --no-pager"); !strings.Contains(out, "Defined-By: imdsmend") {
		t.Errorf("journalctl -x -t imdsmend shows no catalog text:\n%s", out)
	}
	if out := c.sh(t, "systemd-analyze verify /usr/lib/systemd/system/imdsmend*.service /usr/lib/systemd/system/imdsmend.timer 2>&1"); strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify inside the image:\n%s", out)
	}
}

// chainHas checks that systemd-analyze critical-chain's tree holds units as a path from
// its root down, each one deeper than the one before. critical-chain shows for each unit
// only the After= dependency that became active last; cloud-init-local.service's are
// local mounts, systemd-remount-fs, the test's blocker and imdsmend-boot.service, which
// is itself ordered after all of those (local-fs.target, the blocker's Before=), so it is
// always the one shown when the ordering holds.
func chainHas(chain string, units ...string) error {
	depth := -1
	for _, line := range strings.Split(chain, "\n") {
		if len(units) == 0 {
			return nil
		}
		name := strings.TrimLeft(line, " └─│")
		if !strings.HasPrefix(name, units[0]+" ") && name != units[0] {
			continue
		}
		d := utf8.RuneCountInString(line) - utf8.RuneCountInString(name)
		if d <= depth {
			return fmt.Errorf("%s is not below the unit before it", units[0])
		}
		depth, units = d, units[1:]
	}
	if len(units) > 0 {
		return fmt.Errorf("%s is not in the chain", units[0])
	}
	return nil
}

// TestBootWithoutIptablesOrIMDS: an image without iptables or nft, where nothing answers
// on 169.254.169.254. The boot pass finds no firewall to read and IMDS unreachable; it
// ends within its bound, counts as done (exit 2), says so in the journal, and the boot
// goes on to cloud-init.
func TestBootWithoutIptablesOrIMDS(t *testing.T) {
	rootfs, pkg := bootSetup(t)
	c := bootImage(t, rootfs, pkg.deb, []string{"usr/sbin/iptables*", "usr/sbin/ip6tables*", "usr/sbin/xtables*", "usr/sbin/nft"})
	show := c.sh(t, "systemctl show -p ActiveState -p Result -p ExecMainStatus imdsmend-boot.service")
	for _, want := range []string{"ActiveState=active", "Result=success", "ExecMainStatus=2"} {
		if !strings.Contains(show, want+"\n") {
			t.Errorf("imdsmend-boot.service: %q, want %s", show, want)
		}
	}
	journal := c.sh(t, "journalctl -b -t imdsmend --no-pager")
	for _, want := range []string{"finding imds_unreachable", "NOT healthy", "IMDS connection_refused"} {
		if !strings.Contains(journal, want) {
			t.Errorf("the boot pass's journal does not say %q:\n%s", want, journal)
		}
	}
	if state := strings.TrimSpace(c.sh(t, "systemctl show -P ActiveState cloud-init.service")); state != "active" {
		t.Errorf("cloud-init.service is %q after the boot pass, want active", state)
	}
}

// packages are the .deb and .rpm built from this tree.
type packages struct{ deb, rpm string }

// bootSetup skips when the machine lacks the tools, and returns the cached image and the
// packages built from this tree.
func bootSetup(t *testing.T) (rootfs string, pkg packages) {
	t.Helper()
	for _, tool := range []string{"debootstrap", "systemd-nspawn", "nsenter", "unshare", "make", "dpkg", "rpm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install debootstrap systemd-container util-linux make rpm)", tool)
		}
	}
	rootfs = bootRootfs(t)
	pkg.deb, pkg.rpm = makePackages(t, "0.0.1")
	return rootfs, pkg
}

// makePackages builds the .deb and .rpm of this tree as the given version.
func makePackages(t *testing.T, version string) (deb, rpm string) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("make", "--no-print-directory", "-C", moduleRoot(t), "package", "DIST="+dir, "PKG_VERSION="+version)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make package: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "imdsmend_"+version+"-1_*.deb"))
	rpms, _ := filepath.Glob(filepath.Join(dir, "imdsmend-"+version+"-1.*.rpm"))
	if len(debs) != 1 || len(rpms) != 1 {
		t.Fatalf("make package built %v %v, want one .deb and one .rpm", debs, rpms)
	}
	return debs[0], rpms[0]
}

// bootRootfs is the cached image, built with debootstrap when missing.
func bootRootfs(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(bootCacheDir, "bookworm-"+strings.Join(bootPackages, "_"))
	if _, err := os.Stat(filepath.Join(dir, "usr/bin/cloud-init")); err == nil {
		return dir
	}
	if err := os.MkdirAll(bootCacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include="+strings.Join(bootPackages, ","),
		"bookworm", tmp, "http://deb.debian.org/debian")
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(tmp)
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		t.Skipf("cannot build the Debian image with debootstrap (no access to deb.debian.org?): %v: %s", err, lines[len(lines)-1])
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// container is a booted image.
type container struct {
	root string // the image's tree, as the host sees it
	pid  int    // its systemd, as the host sees it
}

// bootImage boots rootfs (overlaid: the cache stays clean) with the blocker, cloud-init's
// configuration and, when pkg is set, imdsmend installed from that .deb or .rpm, in the
// Host of a one-hop layout (harness.Hop) whose IMDS namespace runs the simulator; without
// is a list of the
// image's files to delete first, and nil also serves IMDS (any other value leaves
// 169.254.169.254 without a server). It returns once systemd says the boot is done, and
// powers the image off when t ends.
func bootImage(t *testing.T, rootfs, pkg string, without []string, mask ...string) *container {
	t.Helper()
	work := t.TempDir()
	merged := filepath.Join(work, "merged")
	for _, d := range []string{"upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(work, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := "lowerdir=" + rootfs + ",upperdir=" + filepath.Join(work, "upper") + ",workdir=" + filepath.Join(work, "work")
	if out, err := exec.Command("mount", "-t", "overlay", "overlay", "-o", opts, merged).CombinedOutput(); err != nil {
		t.Skipf("cannot mount an overlay on the image: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", merged).Run() })

	tree.Write(t, merged, map[string]string{
		"etc/systemd/system/imds-blocker.service":                      blockerUnit,
		"etc/systemd/system/sysinit.target.wants/imds-blocker.service": "->/etc/systemd/system/imds-blocker.service",
		"etc/cloud/cloud.cfg.d/99-imdsmend-test.cfg":                   cloudCfg,
		// Not an EC2 machine: ds-identify would turn cloud-init off.
		"etc/cloud/ds-identify.cfg": "policy: enabled\n",
		"etc/hostname":              "imdsmend-boot-test\n",
	})
	for _, pattern := range without {
		matches, _ := filepath.Glob(filepath.Join(merged, pattern))
		for _, m := range matches {
			if err := os.Remove(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	switch filepath.Ext(pkg) {
	case ".deb":
		cmd := exec.Command("dpkg", "--root="+merged, "--force-script-chrootless", "--log=/dev/null", "-i", pkg)
		cmd.Env = append(os.Environ(), "DPKG_ROOT="+merged, "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("dpkg -i: %v\n%s", err, out)
		}
	case ".rpm":
		// This host's rpm, as image builders use it: a fresh database in the image, and the
		// scriptlets run chrooted there. The package requires no other package, so no
		// --nodeps.
		runRPM(t, nil, merged, "--initdb")
		runRPM(t, nil, merged, "-i", pkg)
	}
	for _, unit := range mask {
		tree.Write(t, merged, map[string]string{"etc/systemd/system/" + unit: "->/dev/null"})
	}

	hop := newHop(t, 0)
	udFile := filepath.Join(work, "user-data")
	if err := os.WriteFile(udFile, []byte(userData), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if without == nil {
		if _, err := harness.StartSim(ctx, hop.IMDS, bins.Imdssim, sim.FaultOptional, "--user-data", udFile); err != nil {
			t.Fatal(err)
		}
	}
	// A private mount namespace: a cgroup2 hierarchy for nspawn whatever the host mounts,
	// and /run/systemd hidden so nspawn does not look for a host systemd to register with.
	script := `set -e
mount --make-rprivate /
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /run/systemd && mount -t tmpfs tmpfs /run/systemd
exec systemd-nspawn -q -D "$1" -b --register=no --keep-unit --resolv-conf=off --timezone=off --link-journal=no \
  --capability=CAP_NET_ADMIN --console=passive`
	proc, err := hop.Host.Start("unshare", "-m", "sh", "-c", script, "sh", merged)
	if err != nil {
		t.Fatal(err)
	}
	c := &container{root: merged}
	t.Cleanup(func() {
		if c.pid != 0 {
			// A clean shutdown first, bounded; then whatever is left is killed.
			_ = exec.Command("nsenter", "-t", strconv.Itoa(c.pid), "-a", "systemctl", "poweroff").Run()
			for i := 0; i < 300 && syscall.Kill(c.pid, 0) == nil; i++ {
				time.Sleep(100 * time.Millisecond) // polling for the container's end
			}
		}
		proc.Stop()
	})
	for c.pid == 0 {
		if ctx.Err() != nil {
			t.Fatalf("the container's systemd did not start:\n%s", proc.Output())
		}
		if syscall.Kill(proc.PID(), 0) != nil {
			t.Skipf("systemd-nspawn cannot boot a container on this machine:\n%s", proc.Output())
		}
		c.pid = findInit(proc)
		if c.pid == 0 {
			time.Sleep(100 * time.Millisecond) // polling /proc for the container's init; nothing to wait on
		}
	}
	// is-system-running --wait fails at once while systemd's socket is not there yet.
	var out []byte
	for {
		wait := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(c.pid), "-a", "systemctl", "is-system-running", "--wait")
		out, _ = wait.CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("the boot did not finish: %s\n%s", out, proc.Output())
		}
		if !strings.Contains(string(out), "Failed to connect to bus") {
			break
		}
		time.Sleep(100 * time.Millisecond) // until systemd listens; nothing to wait on from outside
	}
	t.Logf("boot finished: %s%s", out, c.sh(t, "systemctl --failed --no-legend"))
	return c
}

// findInit is the container's systemd: a descendant of nspawn named systemd.
func findInit(p *harness.Proc) int {
	pid := p.PID()
	for depth := 0; depth < 4 && pid != 0; depth++ {
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		next := 0
		for _, f := range strings.Fields(string(kids)) {
			k, _ := strconv.Atoi(f)
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", k)); strings.TrimSpace(string(comm)) == "systemd" {
				return k
			}
			next = k
		}
		pid = next
	}
	return 0
}

// sh runs a shell command inside the container and returns its output.
func (c *container) sh(t *testing.T, command string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(c.pid), "-a", "sh", "-c", command).CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("nsenter: %v", err)
	}
	return string(out)
}

// rpm runs the image's own rpm on the running system, so that its scriptlets talk to the
// container's systemd; package files named in args are copied into the image first.
func (c *container) rpm(t *testing.T, args ...string) string {
	t.Helper()
	args = slices.Clone(args)
	for i, arg := range args {
		if strings.HasSuffix(arg, ".rpm") {
			args[i] = "/var/tmp/" + filepath.Base(arg)
			if err := os.WriteFile(filepath.Join(c.root, args[i]), readFile(t, arg), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return runRPM(t, []string{"nsenter", "-t", strconv.Itoa(c.pid), "-a"}, "/", args...)
}

// runRPM runs rpm (under the command in wrap, if any) on the tree at root, with the
// database where RPM-based systems keep it (Debian's rpm defaults to ~/.rpmdb).
func runRPM(t *testing.T, wrap []string, root string, args ...string) string {
	t.Helper()
	argv := append(append(wrap, "rpm", "--root", root, "--dbpath", "/var/lib/rpm"), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rpm %v: %v\n%s%s", args, err, out, stderr.Bytes())
	}
	return string(out)
}

func (c *container) exists(path string) bool {
	_, err := os.Lstat(filepath.Join(c.root, path))
	return err == nil
}

// datasource is the one cloud-init settled on in this boot (/run/cloud-init/result.json),
// once cloud-init is done.
func (c *container) datasource(t *testing.T) string {
	t.Helper()
	t.Logf("cloud-init status: %s", c.sh(t, "cloud-init status --wait --long"))
	out := c.sh(t, "cat /run/cloud-init/result.json")
	var result struct {
		V1 struct {
			Datasource string   `json:"datasource"`
			Errors     []string `json:"errors"`
		} `json:"v1"`
	}
	if err := json.Unmarshal([]byte(out), &result); err != nil {
		t.Fatalf("result.json: %v\n%s", err, out)
	}
	ds, _, _ := strings.Cut(result.V1.Datasource, " ")
	return ds
}

func (c *container) monotonic(t *testing.T, unit, prop string) int64 {
	t.Helper()
	v, _ := strconv.ParseInt(strings.TrimSpace(c.sh(t, "systemctl show -P "+prop+" "+unit)), 10, 64)
	return v
}
