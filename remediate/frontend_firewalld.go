package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"

	"github.com/imdsmend/imdsmend/facts/firewall"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/internal/types"
)

// firewalld writes its direct rules from /etc/firewalld/direct.xml, so a direct rule that
// blocks IMDS is removed through firewall-cmd, from the permanent configuration and from
// the running one:
//
//	firewall-cmd --permanent --direct --remove-rule ipv4 filter OUTPUT 0 -d 169.254.169.254 -j DROP
//	firewall-cmd --direct --remove-rule ipv4 filter OUTPUT 0 -d 169.254.169.254 -j DROP
//
// Undo adds it back to both. Zone and policy rules (rich rules) are left to the admin: the
// action says the rule returns with the next reload, and from where.

// firewalldMend is a direct rule removed through firewall-cmd.
type firewalldMend struct {
	// Rule is IPV TABLE CHAIN PRIORITY ARGS... as --direct --remove-rule takes it.
	Rule []string `json:"rule"`
	firewalldDone
}

// firewalldDone says which configurations a firewall-cmd change was made in, for undo.
type firewalldDone struct {
	Permanent bool `json:"permanent,omitempty"`
	Runtime   bool `json:"runtime,omitempty"`
}

// both makes a change (op, its inverse undo) in the permanent configuration, then the
// running one; if the second fails, the first is taken back, so it is all or nothing.
func (f *firewalldDone) both(ctx context.Context, cmd func(op string, permanent bool) []string, op, undo string) (string, error) {
	perm, err := runFirewallCmd(ctx, cmd(op, true)...)
	if err != nil {
		return "", err
	}
	f.Permanent = true
	run, err := runFirewallCmd(ctx, cmd(op, false)...)
	if err != nil {
		if _, rerr := runFirewallCmd(ctx, cmd(undo, true)...); rerr == nil {
			f.Permanent = false
		} else {
			err = fmt.Errorf("%w; and taking it back from the permanent configuration failed: %v", err, rerr)
		}
		return "", err
	}
	f.Runtime = true
	return perm + "; " + run, nil
}

// revert runs undo in each configuration the change was made in.
func (f *firewalldDone) revert(ctx context.Context, cmd func(op string, permanent bool) []string, undo string) (string, error) {
	var ran []string
	for _, permanent := range []bool{true, false} {
		if permanent && !f.Permanent || !permanent && !f.Runtime {
			continue
		}
		line, err := runFirewallCmd(ctx, cmd(undo, permanent)...)
		if err != nil {
			return strings.Join(ran, "; "), err
		}
		ran = append(ran, line)
	}
	return strings.Join(ran, "; "), nil
}

// planFirewalldDelete plans removing the direct rule at src, or says why not.
func planFirewalldDelete(p paths.Paths, src firewall.Source) (*firewalldMend, string) {
	where := fmt.Sprintf("%s:%d", src.File, src.Line)
	returns := "it returns with the next firewall-cmd --reload or boot, from " + where
	if src.File != paths.FirewalldDirect {
		return nil, returns + ": imdsmend deletes it live only (firewalld rewrites its rules from its zones and policies)"
	}
	if _, err := exec.LookPath(paths.FirewallCmd); err != nil {
		return nil, returns + ": firewall-cmd is not installed to remove it there"
	}
	data, err := p.ReadFile(src.File)
	if err != nil {
		return nil, fmt.Sprintf("%s: %v", returns, err)
	}
	r, ok := firewall.FirewalldDirectRuleAt(data, src.Line)
	if !ok {
		return nil, returns + ": no direct rule starts on that line now"
	}
	if r.Priority == "" {
		r.Priority = "0"
	}
	return &firewalldMend{Rule: append([]string{r.IPV, r.Table, r.Chain, r.Priority}, r.Args...)}, ""
}

// command is the firewall-cmd line for op (--remove-rule, --add-rule), permanent or not.
func (f *firewalldMend) command(op string, permanent bool) []string {
	args := []string{"--direct", op}
	if permanent {
		args = append([]string{"--permanent"}, args...)
	}
	return append(args, f.Rule...)
}

// runFirewallCmd runs firewall-cmd; a failure (no daemon, no permission) is a skip with its
// words.
func runFirewallCmd(ctx context.Context, args ...string) (string, error) {
	return runFrontEnd(ctx, paths.FirewallCmd, "", args...)
}

// remove takes the rule out of the permanent configuration, then the running one.
func (f *firewalldMend) remove(ctx context.Context) (string, error) {
	return f.both(ctx, f.command, "--remove-rule", "--add-rule")
}

// restore adds back what remove took.
func (f *firewalldMend) restore(ctx context.Context) (string, error) {
	return f.revert(ctx, f.command, "--add-rule")
}

// applyFirewalld removes d's direct rule through firewall-cmd.
func (d *firewallDeleteData) applyFirewalld(ctx context.Context, c *Change) error {
	ran, err := d.Firewalld.remove(ctx)
	var skip *skipError
	switch {
	case errors.As(err, &skip) && !d.Firewalld.Permanent:
		c.Status, c.Error = types.StatusSkipped, skip.reason
	case err != nil && !d.Firewalld.Permanent:
		return err
	case err != nil:
		c.Error = err.Error()
	default:
		c.Detail = ran
	}
	c.Data, err = json.Marshal(d)
	return err
}

// firewalld denies outbound traffic with a policy (ingress zone HOST, target REJECT or
// DROP), whose rules live in nft chains filter_OUT_policy_NAME of table inet firewalld.
// firewall_allow opens IMDS there with a rich rule, which firewalld evaluates before the
// policy's target, in the permanent and the running configuration.

// firewalldPolicyChain reads the policy name out of its chain's name.
var firewalldPolicyChain = regexp.MustCompile(`^filter_OUT_policy_(.+?)(_pre|_log|_deny|_allow|_post)?$`)

// firewalldAllow is the rich rule firewall_allow adds to a firewalld policy.
type firewalldAllow struct {
	Policy   string `json:"policy"`
	RichRule string `json:"rich_rule"`
	firewalldDone
}

// planFirewalldAllow plans the rich rule for a blocker in chain of firewalld's nft table,
// or says why the ACCEPT can only go in live.
func planFirewalldAllow(table, chain, family, dst string, uid *uint32) (*firewalldAllow, string) {
	live := "firewalld owns this ruleset and imdsmend adds the rule live only: the next firewalld reload or boot removes it"
	m := firewalldPolicyChain.FindStringSubmatch(chain)
	switch {
	case !strings.HasSuffix(table, " firewalld") || m == nil:
		return nil, live
	case uid != nil:
		return nil, live + " (a firewalld rich rule can't match a uid)"
	}
	if _, err := exec.LookPath(paths.FirewallCmd); err != nil {
		return nil, live + " (firewall-cmd is not installed)"
	}
	rich := fmt.Sprintf(`rule family="%s" destination address="%s" port port="80" protocol="tcp" accept`, family, dst)
	return &firewalldAllow{Policy: m[1], RichRule: rich}, ""
}

func (f *firewalldAllow) command(op string, permanent bool) []string {
	args := []string{"--policy=" + f.Policy, op + "=" + f.RichRule}
	if permanent {
		args = append([]string{"--permanent"}, args...)
	}
	return args
}

// describe is the commands apply runs.
func (f *firewalldAllow) describe() string {
	return firewall.QuoteWords(append([]string{paths.FirewallCmd}, f.command("--add-rich-rule", true)...)) + "; " +
		firewall.QuoteWords(append([]string{paths.FirewallCmd}, f.command("--add-rich-rule", false)...))
}

// add adds the rich rule, permanent then runtime.
func (f *firewalldAllow) add(ctx context.Context) (string, error) {
	return f.both(ctx, f.command, "--add-rich-rule", "--remove-rich-rule")
}

// remove takes out what add added.
func (f *firewalldAllow) remove(ctx context.Context) (string, error) {
	return f.revert(ctx, f.command, "--remove-rich-rule")
}

// observe asks firewalld whether its permanent and running configurations hold the rich
// rule, and records what it finds for undo.
func (f *firewalldAllow) observe(ctx context.Context) bool {
	_, perm := runFirewallCmd(ctx, f.command("--query-rich-rule", true)...)
	_, run := runFirewallCmd(ctx, f.command("--query-rich-rule", false)...)
	f.Permanent, f.Runtime = perm == nil, run == nil
	return f.Permanent || f.Runtime
}
