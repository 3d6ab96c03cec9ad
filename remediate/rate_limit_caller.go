package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/coreos/go-iptables/iptables"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/imdsmend/imdsmend/facts/firewall"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/zclconf/go-cty/cty"
)

// RateLimitCaller caps how many new connections to IMDS one non-root user may open, with
// an iptables hashlimit rule matched on the socket's owner at the top of filter/OUTPUT:
// new connections over the rate are reset. It never touches root's traffic (imdsmend,
// cloud-init, the SSM agent). Opt-in: no rule of the default policy requests it.
type RateLimitCaller struct{}

// Kind implements Fixer.
func (RateLimitCaller) Kind() string { return "rate_limit_caller" }

// Doc implements Fixer.
func (RateLimitCaller) Doc() string {
	return "cap the new connections to IMDS of one non-root `user` at `rate` (e.g. \"10/second\", burst `burst`) with an iptables hashlimit rule; undo deletes it"
}

// Permission implements Fixer.
func (RateLimitCaller) Permission() types.Permission { return types.PermFirewall }

// Spec implements Fixer.
func (RateLimitCaller) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{
		"user":  &hcldec.AttrSpec{Name: "user", Type: cty.String, Required: true},
		"rate":  &hcldec.AttrSpec{Name: "rate", Type: cty.String},
		"burst": &hcldec.AttrSpec{Name: "burst", Type: cty.Number},
	}
}

// Defaults of the cap: IMDS's own limit is in the thousands of requests per second; a
// client that caches needs a few connections a minute.
const (
	defaultCallerRate  = "10/second"
	defaultCallerBurst = 20
)

// hashlimitRate is what iptables' hashlimit reads as a rate.
var hashlimitRate = regexp.MustCompile(`^[1-9][0-9]{0,5}/(second|sec|s|minute|min|m|hour|h|day|d)$`)

// rateLimitData is a change's record: the rule, which Apply inserts and Undo deletes.
type rateLimitData struct {
	Family string   `json:"family"` // ipv4 or ipv6
	User   string   `json:"user"`
	UID    uint32   `json:"uid"`
	Spec   []string `json:"spec"` // the rule's words after -A OUTPUT
}

const rateLimitTable, rateLimitChain = "filter", "OUTPUT"

// Plan implements Fixer: one change per family (IPv6 with settings.ipv6), none when the
// rule is there already.
func (RateLimitCaller) Plan(_ context.Context, env *Env, args cty.Value) ([]*Change, error) {
	user := optString(args.GetAttr("user"))
	rate := optString(args.GetAttr("rate"))
	if rate == "" {
		rate = defaultCallerRate
	}
	if !hashlimitRate.MatchString(rate) {
		return nil, fmt.Errorf("rate %q: want a count per second, minute, hour or day, e.g. \"10/second\"", rate)
	}
	burst := defaultCallerBurst
	if b := args.GetAttr("burst"); !b.IsNull() {
		n, acc := b.AsBigFloat().Int64()
		if acc != 0 || n < 1 || n > 10000 {
			return nil, fmt.Errorf("burst %s: want a whole number from 1 to 10000", b.AsBigFloat().Text('g', -1))
		}
		burst = int(n)
	}
	uid, ok := firewall.UserID(env.Paths, user)
	switch {
	case user == "" || !ok:
		return nil, fmt.Errorf("user %q: no such user in /etc/passwd; name the user (or uid) whose processes call IMDS too often", user)
	case uid == 0:
		return nil, errors.New("user root: rate_limit_caller never limits root, whose requests imdsmend, cloud-init and the SSM agent make; fix the caller instead")
	}
	families := []string{"ipv4"}
	if env.IPv6 {
		families = append(families, "ipv6")
	}
	var changes []*Change
	for _, fam := range families {
		d := rateLimitData{Family: fam, User: user, UID: uid, Spec: rateLimitSpec(fam, uid, rate, burst)}
		ipt, err := d.iptables()
		if err != nil {
			return nil, err
		}
		if exists, err := ipt.Exists(rateLimitTable, rateLimitChain, d.Spec...); err != nil {
			return nil, fmt.Errorf("look for the rate limit of %s in %s/%s: %w", user, rateLimitTable, rateLimitChain, err)
		} else if exists {
			continue
		}
		data, err := json.Marshal(d)
		if err != nil {
			return nil, err
		}
		changes = append(changes, &Change{
			Target: fmt.Sprintf("%s/%s/%s", fam, rateLimitTable, rateLimitChain),
			Detail: firewall.QuoteWords(append([]string{d.bin(), "-t", rateLimitTable, "-I", rateLimitChain, "1"}, d.Spec...)),
			Data:   data,
		})
	}
	return changes, nil
}

// rateLimitSpec is the rule: new TCP connections (SYN) of uid to IMDS over rate are reset.
func rateLimitSpec(family string, uid uint32, rate string, burst int) []string {
	dst, reject := "169.254.169.254/32", "tcp-reset"
	if family == "ipv6" {
		dst = "fd00:ec2::254/128"
	}
	id := strconv.FormatUint(uint64(uid), 10)
	return []string{
		"-d", dst, "-p", "tcp", "-m", "tcp", "--dport", "80", "--tcp-flags", "FIN,SYN,RST,ACK", "SYN",
		"-m", "owner", "--uid-owner", id,
		"-m", "hashlimit", "--hashlimit-above", rate, "--hashlimit-burst", strconv.Itoa(burst),
		"--hashlimit-name", "imdsmend-" + id,
		"-m", "comment", "--comment", "imdsmend:rate_limit_caller uid " + id,
		"-j", "REJECT", "--reject-with", reject,
	}
}

func (d *rateLimitData) bin() string {
	if d.Family == "ipv6" {
		return paths.Ip6tables
	}
	return paths.Iptables
}

func (d *rateLimitData) iptables() (*iptables.IPTables, error) {
	proto := iptables.ProtocolIPv4
	if d.Family == "ipv6" {
		proto = iptables.ProtocolIPv6
	}
	ipt, err := iptables.New(iptables.Path(d.bin()), iptables.IPFamily(proto), iptables.Timeout(int(firewall.XtablesLockWait.Seconds())))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.bin(), err)
	}
	return ipt, nil
}

func readRateLimit(c *Change) (*rateLimitData, *iptables.IPTables, error) {
	var d rateLimitData
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return nil, nil, fmt.Errorf("read change record: %w", err)
	}
	if len(d.Spec) == 0 {
		return nil, nil, errors.New("read change record: no rule")
	}
	ipt, err := d.iptables()
	return &d, ipt, err
}

// Apply implements Fixer.
func (RateLimitCaller) Apply(_ context.Context, _ *Env, c *Change) error {
	d, ipt, err := readRateLimit(c)
	if err != nil {
		return err
	}
	exists, err := ipt.Exists(rateLimitTable, rateLimitChain, d.Spec...)
	if err != nil {
		return fmt.Errorf("look for the rate limit of %s: %w", d.User, err)
	}
	if exists {
		c.Status = types.StatusUnchanged
		return nil
	}
	if err := ipt.Insert(rateLimitTable, rateLimitChain, 1, d.Spec...); err != nil {
		return fmt.Errorf("insert the rate limit of %s into %s/%s: %w", d.User, rateLimitTable, rateLimitChain, err)
	}
	return nil
}

// Undo implements Fixer: it deletes the rule, wherever it is in the chain now.
func (RateLimitCaller) Undo(_ context.Context, _ *Env, c *Change) error {
	d, ipt, err := readRateLimit(c)
	if err != nil {
		return err
	}
	exists, err := ipt.Exists(rateLimitTable, rateLimitChain, d.Spec...)
	if err != nil {
		return fmt.Errorf("look for the rate limit of %s: %w", d.User, err)
	}
	if !exists {
		c.Detail = fmt.Sprintf("nothing to do: %s/%s holds no rate limit of %s", rateLimitTable, rateLimitChain, d.User)
		return nil
	}
	if err := ipt.Delete(rateLimitTable, rateLimitChain, d.Spec...); err != nil {
		return fmt.Errorf("delete the rate limit of %s: %w", d.User, err)
	}
	c.Detail = firewall.QuoteWords(append([]string{d.bin(), "-t", rateLimitTable, "-D", rateLimitChain}, d.Spec...))
	return nil
}

// Observe implements Fixer: the change is in effect while the rule is in the chain.
func (RateLimitCaller) Observe(_ context.Context, _ *Env, c *Change) (bool, error) {
	d, ipt, err := readRateLimit(c)
	if err != nil {
		return false, err
	}
	exists, err := ipt.Exists(rateLimitTable, rateLimitChain, d.Spec...)
	if err != nil {
		return false, fmt.Errorf("look for the rate limit of %s: %w", d.User, err)
	}
	return exists, nil
}
