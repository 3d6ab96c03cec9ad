// Command demo shows imdsmend at work inside a throwaway network namespace: a healthy IMDS
// (the simulator on 169.254.169.254), then IMDS broken the way the AWS troubleshooting
// article shows (an iptables REJECT toward 169.254.169.254), diagnosed, planned, mended,
// verified and undone; then, in a second namespace, an instance whose HttpEndpoint is
// disabled, mended through the EC2 API (the simulator serves it too). `sudo make demo` runs it; it needs root and cleans up after itself,
// also when interrupted.
//
//	go run ./tests/demo --imdsmend bin/imdsmend --imdssim bin/imdssim
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/tests/ec2sim/ec2"
	"github.com/imdsmend/imdsmend/tests/harness"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
	"github.com/imdsmend/imdsmend/tests/simkit"
)

func main() {
	imdsmendBin := flag.String("imdsmend", "bin/imdsmend", "the imdsmend binary to show")
	imdssimBin := flag.String("imdssim", "bin/imdssim", "the IMDS simulator binary")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stdout, *imdsmendBin, *imdssimBin)
	// Read before stop(), which cancels ctx too: only a signal makes this an interruption.
	interrupted := ctx.Err() != nil
	stop()
	switch {
	case err == nil:
	case interrupted:
		fmt.Fprintln(os.Stderr, "demo: interrupted; namespace and simulator removed")
		os.Exit(130)
	default:
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

// demo holds what every step needs.
type demo struct {
	out      io.Writer
	ns       *harness.Namespace
	bin      string
	policy   string
	stateDir string
	// env is added to imdsmend's environment (the EC2 API's endpoint and credentials).
	env []string
}

func run(ctx context.Context, out io.Writer, imdsmendBin, imdssimBin string) error {
	if os.Geteuid() != 0 {
		return errors.New("the demo creates a network namespace and iptables rules: run it as root (sudo make demo)")
	}
	bins := map[string]*string{"--imdsmend": &imdsmendBin, "--imdssim": &imdssimBin}
	for flagName, p := range bins {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("%s: %w (build it with `make build`)", flagName, err)
		}
		*p = abs
	}
	dir, err := os.MkdirTemp("", "imdsmend-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	d := &demo{out: out, bin: imdsmendBin, stateDir: filepath.Join(dir, "state")}
	if d.policy, err = harness.WritePolicy(dir); err != nil {
		return err
	}

	if d.ns, err = harness.NewNamespace(); err != nil {
		return err
	}
	defer d.ns.Close()
	if _, err := harness.StartSim(ctx, d.ns, imdssimBin, sim.FaultOK); err != nil {
		return err
	}
	d.say("A network namespace %s with 169.254.169.254 on its loopback, served by imdssim.", d.ns.Name)
	d.say("Every imdsmend command below runs in it as\n  ip netns exec %s %s COMMAND --policy %s --state-dir %s",
		d.ns.Name, d.bin, d.policy, d.stateDir)
	d.say("The policy is the built-in one with proxy_leak off: that rule reads this machine's own\nfiles and processes, which the namespace does not hide.")

	d.section("1. A healthy instance")
	if err := d.imdsmend(ctx, "check"); err != nil {
		return err
	}

	d.section("2. Break IMDS as in the AWS troubleshooting article: a local firewall rule")
	d.prompt(harness.RejectIMDS.What)
	if err := harness.RejectIMDS.Make(ctx, d.ns); err != nil {
		return err
	}
	if err := d.shell(ctx, "iptables", "-S", "OUTPUT"); err != nil {
		return err
	}

	d.section("3. imdsmend finds why IMDS is unreachable")
	if err := d.imdsmend(ctx, "check"); err != nil {
		return err
	}

	d.section("4. What apply would do, then do it (every change goes to the ledger first)")
	for _, cmd := range []string{"plan", "apply"} {
		if err := d.imdsmend(ctx, cmd); err != nil {
			return err
		}
	}
	fixed := harness.RejectIMDS.Gone(ctx, d.ns) == nil
	if err := d.imdsmend(ctx, "check"); err != nil {
		return err
	}

	d.section("5. Undo the last run's changes (the REJECT rule returns)")
	if err := d.imdsmend(ctx, "undo", "--last"); err != nil {
		return err
	}
	if err := d.shell(ctx, "iptables", "-S", "OUTPUT"); err != nil {
		return err
	}
	if err := d.imdsmend(ctx, "check"); err != nil {
		return err
	}
	restored := harness.RejectIMDS.Gone(ctx, d.ns) != nil
	if err := d.shell(ctx, "iptables", "-F", "OUTPUT"); err != nil {
		return err
	}

	d.section("6. A default-deny host (CIS-hardened): outbound policy DROP, replies allowed")
	for _, args := range [][]string{{"-A", "OUTPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"}, {"-P", "OUTPUT", "DROP"}} {
		if err := d.shell(ctx, "iptables", args...); err != nil {
			return err
		}
	}
	d.say("The policy stays DROP: apply adds the narrowest ACCEPT for IMDS (firewall_allow), marked imdsmend.")
	for _, cmd := range []string{"plan", "apply"} {
		if err := d.imdsmend(ctx, cmd); err != nil {
			return err
		}
	}
	if err := d.shell(ctx, "iptables", "-S", "OUTPUT"); err != nil {
		return err
	}
	res, err := d.ns.Exec(ctx, nil, "iptables", "-C", "OUTPUT", "-d", harness.IMDSAddr+"/32", "-p", "tcp", "-m", "tcp", "--dport", "80", "-m", "comment", "--comment", "imdsmend", "-j", "ACCEPT")
	allowed := err == nil && res.ExitCode == 0
	if err := d.imdsmend(ctx, "undo", "--last"); err != nil {
		return err
	}
	if err := d.shell(ctx, "iptables", "-P", "OUTPUT", "ACCEPT"); err != nil {
		return err
	}

	kubeFixed, err := d.kubeProxyNode(ctx)
	if err != nil {
		return err
	}

	first := d.ns.Name
	if err := d.disabledEndpoint(ctx, imdssimBin, dir); err != nil {
		return err
	}
	d.section("Summary")
	d.say("Removing namespaces %s and %s and the simulators.", first, d.ns.Name)
	switch {
	case !fixed:
		return errors.New("apply left the REJECT rule in place")
	case !restored:
		return errors.New("apply removed the REJECT rule, but undo did not put it back")
	case !allowed:
		return errors.New("apply did not allow IMDS on the default-deny host")
	case !kubeFixed:
		return errors.New("apply did not delete the DNAT of IMDS among kube-proxy's rules")
	}
	d.say("apply removed the REJECT rule and IMDS answered again; undo put the rule back.")
	d.say("On the default-deny host apply allowed IMDS alone and kept the DROP policy; undo took the ACCEPT out.")
	d.say("Among kube-proxy's 24,400 rules, check read only IMDS's path; apply deleted the DNAT that captured IMDS.")
	d.say("apply enabled the second instance's endpoint through the EC2 API, and IMDS answered again.")
	return ctx.Err()
}

// kubeDNAT is a Service rule capturing IMDS among kube-proxy's (CVE-2020-8554's shape).
var kubeDNAT = []string{"-t", "nat", "-I", "KUBE-SERVICES", "2000", "-d", harness.IMDSAddr + "/32", "-p", "tcp", "-m", "tcp", "--dport", "80",
	"-m", "comment", "--comment", "kube-system/fake-imds:http", "-j", "DNAT", "--to-destination", "10.244.7.7:8080"}

// kubeProxyNode shows a kube-proxy node: its 4,000 Services' rules cost a healthy check
// little (IMDS's path is read over netlink), and a Service rule that captures IMDS is
// found with its place among them, deleted, and checked gone.
func (d *demo) kubeProxyNode(ctx context.Context) (fixed bool, err error) {
	d.section("7. A kube-proxy node: 4,000 Services, 24,400 iptables rules")
	if err := (harness.KubeProxy{Services: 4000, Endpoints: 1}).Load(ctx, d.ns, "iptables"); err != nil {
		return false, err
	}
	d.say("check reads only the chains on IMDS's path, over netlink, without running iptables:")
	if err := d.imdsmend(ctx, "check"); err != nil {
		return false, err
	}
	if err := d.shell(ctx, "iptables", kubeDNAT...); err != nil {
		return false, err
	}
	for _, cmd := range []string{"check", "apply", "check"} {
		if err := d.imdsmend(ctx, cmd); err != nil {
			return false, err
		}
	}
	res, err := d.ns.Exec(ctx, nil, "iptables", append([]string{"-t", "nat", "-C", "KUBE-SERVICES"}, kubeDNAT[5:]...)...)
	fixed = err == nil && res.ExitCode == 1
	for _, table := range []string{"nat", "filter"} {
		for _, op := range []string{"-F", "-X"} {
			if res, err := d.ns.Exec(ctx, nil, "iptables", "-t", table, op); err != nil || res.ExitCode != 0 {
				return false, fmt.Errorf("iptables -t %s %s: %v %s", table, op, err, res.Stderr)
			}
		}
	}
	return fixed, nil
}

// disabledEndpoint shows what only the EC2 API mends: the instance's HttpEndpoint
// disabled, found, planned, mended through the API (imdssim serves it too) and verified.
// It runs in a namespace of its own, as a second instance.
func (d *demo) disabledEndpoint(ctx context.Context, imdssimBin, dir string) error {
	d.section("8. Another instance: its HttpEndpoint is disabled, which only the EC2 API mends")
	ns, err := harness.NewNamespace()
	if err != nil {
		return err
	}
	defer ns.Close()
	const api = "127.0.0.1:8081"
	s, err := harness.StartSim(ctx, ns, imdssimBin, sim.FaultOK, "--ec2", api, "--ec2-apply-after", "0")
	if err != nil {
		return err
	}
	d.ns, d.stateDir = ns, filepath.Join(dir, "state-ec2")
	d.env = []string{"AWS_ENDPOINT_URL_EC2=http://" + api, "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=demo",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
	dropIn := fmt.Sprintf("settings {\n  allow { ec2_api = true }\n  ec2 { instance_id = %q }\n}\n", sim.InstanceID)
	if err := os.WriteFile(filepath.Join(filepath.Dir(d.policy), "policy.d", "20-ec2.hcl"), []byte(dropIn), 0o644); err != nil {
		return err
	}
	d.say("Namespace %s: imdssim serves IMDS and, on %s, the EC2 API for instance %s.", ns.Name, api, sim.InstanceID)
	d.say("A drop-in allows imdsmend to call the API (docs/ec2-api.md):\n%s", dropIn)
	admin := simkit.NewAdminClient("imdssim/ec2", "unix:"+s.Socket)
	d.prompt("aws ec2 modify-instance-metadata-options --instance-id " + sim.InstanceID + " --http-endpoint disabled   # as someone did")
	if err := admin.Do(ctx, "POST", ec2.AdminOptions, url.Values{"id": {sim.InstanceID}, "http_endpoint": {ec2.Disabled}}, nil); err != nil {
		return err
	}
	for _, cmd := range []string{"check", "plan", "apply", "check"} {
		if err := d.imdsmend(ctx, cmd); err != nil {
			return err
		}
	}
	var in ec2.Instance
	if err := admin.Do(ctx, "GET", ec2.AdminInstances+"?id="+sim.InstanceID, nil, &in); err != nil {
		return err
	}
	if in.Options.HTTPEndpoint != ec2.Enabled {
		return fmt.Errorf("apply left HttpEndpoint %s", in.Options.HTTPEndpoint)
	}
	return nil
}

// imdsmend runs one imdsmend command in the namespace and shows its report. Exit 0
// (healthy) and 2 (findings remain, or plan has actions) are part of the story; anything
// else is a failure of the demo.
func (d *demo) imdsmend(ctx context.Context, command string, args ...string) error {
	d.prompt(strings.Join(append([]string{"imdsmend", command}, args...), " "))
	full := append([]string{command, "--policy", d.policy, "--state-dir", d.stateDir, "--timeout", "10s"}, args...)
	start := time.Now()
	res, err := d.ns.Exec(ctx, d.env, d.bin, full...)
	if err != nil {
		return err
	}
	_, _ = io.WriteString(d.out, res.Stdout)
	fmt.Fprintf(d.out, "(exit %d, %s)\n", res.ExitCode, time.Since(start).Round(time.Millisecond))
	if res.ExitCode != report.ExitHealthy && res.ExitCode != report.ExitFindings {
		return fmt.Errorf("imdsmend %s failed with exit %d:\n%s", command, res.ExitCode, res.Stderr)
	}
	return ctx.Err()
}

// shell runs a command in the namespace and shows its output.
func (d *demo) shell(ctx context.Context, name string, args ...string) error {
	d.prompt(strings.Join(append([]string{name}, args...), " "))
	res, err := d.ns.Exec(ctx, nil, name, args...)
	if err != nil {
		return err
	}
	_, _ = io.WriteString(d.out, res.Stdout+res.Stderr)
	if res.ExitCode != 0 {
		return fmt.Errorf("%s exited %d", name, res.ExitCode)
	}
	return nil
}

func (d *demo) prompt(cmd string) { fmt.Fprintf(d.out, "\n%s# %s\n", d.ns.Name, cmd) }

func (d *demo) section(title string) { fmt.Fprintf(d.out, "\n== %s ==\n", title) }

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.out, format+"\n", args...) }
