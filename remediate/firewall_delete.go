package remediate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/coreos/go-iptables/iptables"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/imdsmend/imdsmend/facts/firewall"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/gocty"
)

// FirewallDelete removes firewall rules, each exactly by its full spec (iptables) or by its
// handle after checking the handle still holds the same rule (native nftables). Undo puts
// each rule back where it was: an iptables rule after the rule that preceded it, an nft
// rule at the index it had; a rule that is back already is left alone.
type FirewallDelete struct{}

// Kind implements Fixer.
func (FirewallDelete) Kind() string { return "firewall_delete" }

// Doc implements Fixer.
func (FirewallDelete) Doc() string {
	return "delete the given rules (objects of facts.firewall.rules) on their backend and family; undo re-inserts them"
}

// Permission implements Fixer.
func (FirewallDelete) Permission() types.Permission { return types.PermFirewall }

// firewallRuleKeys are the attributes a rule object must have; the others of
// facts.firewall.rules may be left out, so a drop-in can name a rule by hand.
var firewallRuleKeys = []string{"backend", "family", "table", "chain", "spec"}

// Spec implements Fixer: `rules` is a list of rule objects, typically a filtered
// facts.firewall.rules.
func (FirewallDelete) Spec() hcldec.Spec {
	full, err := gocty.ImpliedType(firewall.Rule{})
	if err != nil {
		panic(err)
	}
	var optional []string
	for name := range full.AttributeTypes() {
		if !slices.Contains(firewallRuleKeys, name) {
			optional = append(optional, name)
		}
	}
	rule := cty.ObjectWithOptionalAttrs(full.AttributeTypes(), optional)
	return &hcldec.ObjectSpec{
		"rules": &hcldec.AttrSpec{Name: "rules", Type: cty.List(rule), Required: true},
	}
}

// firewallDeleteData is a change's record: what to delete (from Plan) and where it was
// (from Apply), which Undo needs.
type firewallDeleteData struct {
	Backend string `json:"backend"`
	Family  string `json:"family"`
	Table   string `json:"table"`
	Chain   string `json:"chain"`
	Spec    string `json:"spec"`
	Handle  int    `json:"handle,omitempty"`
	// Copies is how many identical iptables rules the policy listed (iptables -D removes
	// the first each time).
	Copies int `json:"copies,omitempty"`
	// Positions of the deleted rules when they were deleted: 1-based for iptables, the
	// 0-based index for nft, in deletion order.
	Positions []int `json:"positions,omitempty"`
	// Previous holds, per deleted rule, the spec of the rule just before it when it went
	// (null: it was the first), so undo puts it back beside that neighbour even when
	// positions have shifted since.
	Previous []*string `json:"previous,omitempty"`
	// Remaining is how many identical iptables rules stayed in the chain after the
	// deletion; undo restores only what is missing beyond them.
	Remaining int `json:"remaining,omitempty"`
	// Expr and Comment are the deleted nft rule, to put back as it was.
	Expr    json.RawMessage `json:"expr,omitempty"`
	Comment string          `json:"comment,omitempty"`
	// File is the rules file mended with the live rule (firewall_source.go).
	File *sourceMend `json:"file,omitempty"`
	// UFW is the UFW user rule deleted through ufw instead (frontend_ufw.go).
	UFW *ufwMend `json:"ufw,omitempty"`
	// Firewalld is the firewalld direct rule removed through firewall-cmd instead.
	Firewalld *firewalldMend `json:"firewalld,omitempty"`
}

var iptablesTables = []string{"filter", "nat", "mangle", "raw", "security"}

// nftName is a name nft's scanner reads unquoted. nft joins its arguments into one line
// and parses that, so a table or chain given as anything else could add commands.
var nftName = regexp.MustCompile(`^[A-Za-z_.][A-Za-z0-9_./-]*$`)

// Plan implements Fixer: one change per distinct rule.
func (FirewallDelete) Plan(_ context.Context, env *Env, args cty.Value) ([]*Change, error) {
	list := args.GetAttr("rules")
	if list.IsNull() || !list.IsKnown() {
		return nil, errors.New("rules is null or unknown")
	}
	var changes []*Change
	byTarget := map[string]*Change{}
	var p paths.Paths
	if env != nil {
		p = env.Paths
	}
	for i, it := 0, list.ElementIterator(); it.Next(); i++ {
		_, v := it.Element()
		d, err := decodeFirewallRule(v)
		if err != nil {
			return nil, fmt.Errorf("rules[%d]: %w", i, err)
		}
		target, detail, err := d.describe()
		if err != nil {
			return nil, fmt.Errorf("rules[%d]: %w", i, err)
		}
		src := decodeSource(v)
		if c, dup := byTarget[target]; dup {
			var prev firewallDeleteData
			_ = json.Unmarshal(c.Data, &prev)
			if d.Backend != "nftables" {
				prev.Copies++
			}
			if note := planMend(p, &prev, src); note != "" && !strings.Contains(c.Detail, note) {
				c.Detail += "; " + note
			}
			c.Data, _ = json.Marshal(prev)
			continue
		}
		if d.Backend != "nftables" {
			d.Copies = 1
		}
		if note := planMend(p, &d, src); note != "" {
			detail += "; " + note
		}
		data, err := json.Marshal(d)
		if err != nil {
			return nil, err
		}
		c := &Change{Target: target, Detail: detail, Data: data}
		byTarget[target] = c
		changes = append(changes, c)
	}
	for _, c := range changes {
		var d firewallDeleteData
		if err := json.Unmarshal(c.Data, &d); err == nil && d.File != nil {
			c.Detail += "; " + d.File.describe()
		}
		if d.Firewalld != nil {
			c.Detail = firewall.QuoteWords(append([]string{paths.FirewallCmd}, d.Firewalld.command("--remove-rule", true)...)) + "; " + firewall.QuoteWords(append([]string{paths.FirewallCmd}, d.Firewalld.command("--remove-rule", false)...))
		}
		if d.UFW != nil {
			c.Detail = firewall.QuoteWords(append([]string{paths.UFW, "--force", "delete"}, withoutComment(d.UFW.Rule)...)) + fmt.Sprintf(" (UFW's rule %d: ufw deletes it live and from its files)", d.UFW.Number)
		}
	}
	return changes, nil
}

func decodeFirewallRule(v cty.Value) (firewallDeleteData, error) {
	if v.IsNull() || !v.IsKnown() {
		return firewallDeleteData{}, errors.New("the rule is null or unknown")
	}
	str := func(name string) string {
		a := v.GetAttr(name)
		if a.IsNull() || !a.IsKnown() {
			return ""
		}
		return a.AsString()
	}
	d := firewallDeleteData{Backend: str("backend"), Family: str("family"), Table: str("table"), Chain: str("chain"), Spec: str("spec")}
	if h := v.GetAttr("handle"); !h.IsNull() && h.IsKnown() {
		if err := gocty.FromCtyValue(h, &d.Handle); err != nil {
			return d, fmt.Errorf("handle: %w", err)
		}
	}
	return d, nil
}

// describe validates a rule and returns its change target and the exact command.
func (d firewallDeleteData) describe() (target, detail string, err error) {
	if d.Family != "ipv4" && d.Family != "ipv6" {
		return "", "", fmt.Errorf("family must be \"ipv4\" or \"ipv6\", not %q", d.Family)
	}
	if d.Chain == "" || strings.ContainsAny(d.Chain, " \t\n") || strings.HasPrefix(d.Chain, "-") {
		return "", "", fmt.Errorf("bad chain name %q", d.Chain)
	}
	if strings.HasPrefix(d.Spec, "-P ") {
		return "", "", fmt.Errorf("%s/%s/%s is a chain policy (%s), not a rule: it can't be deleted; allow IMDS with an ACCEPT rule instead", d.Backend, d.Table, d.Chain, d.Spec)
	}
	switch d.Backend {
	case "nft", "legacy":
		if !slices.Contains(iptablesTables, d.Table) {
			return "", "", fmt.Errorf("unknown iptables table %q", d.Table)
		}
		words, err := firewall.SplitWords(d.Spec)
		if err != nil || len(words) == 0 {
			return "", "", fmt.Errorf("spec %q is not a rule: %v", d.Spec, err)
		}
		bin, err := firewall.IptablesCommand(d.Backend, d.Family)
		if err != nil {
			return "", "", err
		}
		target = fmt.Sprintf("%s/%s/%s/%s: %s", d.Backend, d.Family, d.Table, d.Chain, d.Spec)
		cmd := append([]string{filepath.Base(bin), "-t", d.Table, "-D", d.Chain}, words...)
		return target, firewall.QuoteWords(cmd), nil
	case "nftables":
		fam, table, ok := strings.Cut(d.Table, " ")
		if !ok || d.Handle <= 0 {
			return "", "", fmt.Errorf("an nftables rule needs its table as \"FAMILY NAME\" and its handle (got table %q, handle %d)", d.Table, d.Handle)
		}
		if !slices.Contains([]string{"ip", "ip6", "inet"}, fam) || !nftName.MatchString(table) || !nftName.MatchString(d.Chain) {
			return "", "", fmt.Errorf("nftables table %q chain %q: not an ip, ip6 or inet table with plain names, which nft could read as more than names; delete the rule by hand", d.Table, d.Chain)
		}
		// One rule of an inet table shows up once per family: it is one change.
		target = fmt.Sprintf("nftables/%s/%s/handle %d: %s", d.Table, d.Chain, d.Handle, d.Spec)
		return target, firewall.QuoteWords([]string{paths.Nft, "delete", "rule", fam, table, d.Chain, "handle", fmt.Sprint(d.Handle)}), nil
	}
	return "", "", fmt.Errorf("backend must be \"nft\", \"legacy\" or \"nftables\", not %q", d.Backend)
}

// Apply implements Fixer.
func (FirewallDelete) Apply(ctx context.Context, env *Env, c *Change) error {
	var d firewallDeleteData
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return fmt.Errorf("read change record: %w", err)
	}
	if d.UFW != nil {
		return d.applyUFW(ctx, c)
	}
	if d.Firewalld != nil {
		return d.applyFirewalld(ctx, c)
	}
	var err error
	restoreFile := func() error { return nil }
	if d.File != nil {
		restoreFile, err = d.File.apply(env.Paths)
	}
	if err == nil {
		if d.Backend == "nftables" {
			err = d.deleteNft(ctx)
		} else {
			err = d.deleteIptables()
		}
		if err != nil && len(d.Positions) == 0 && d.File != nil {
			// Nothing went live: the file goes back as it was, so the change is all or nothing.
			if rerr := restoreFile(); rerr != nil {
				err = fmt.Errorf("%w; and putting %s back failed: %v (the original is in %s)", err, d.File.Path, rerr, env.Paths.File(d.File.Backup))
			}
		}
	}
	var skip *skipError
	switch {
	case errors.As(err, &skip):
		c.Status, c.Error = types.StatusSkipped, skip.reason
		return nil
	case err != nil && len(d.Positions) > 0:
		// Some copies went before the error: an applied change, so undo can put them back.
		c.Error = fmt.Sprintf("deleted %d of %d identical rules, then: %v", len(d.Positions), d.Copies, err)
	case err != nil:
		return err
	case len(d.Positions) == 0 && d.File == nil:
		c.Status = types.StatusUnchanged
	}
	c.Data, err = json.Marshal(d)
	return err
}

// skipError is a change that was not made because the system no longer holds what was
// planned (a reload changed the rules); reason says what was found instead.
type skipError struct{ reason string }

func (e *skipError) Error() string { return e.reason }

// Undo implements Fixer. It sets c.Detail to the commands it ran, or says that nothing
// was missing.
func (FirewallDelete) Undo(ctx context.Context, env *Env, c *Change) error {
	var d firewallDeleteData
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return fmt.Errorf("read change record: %w", err)
	}
	if d.Firewalld != nil {
		ran, err := d.Firewalld.restore(ctx)
		if c.Detail = ran; ran == "" && err == nil {
			c.Detail = "nothing to do: firewall-cmd removed nothing"
		}
		return err
	}
	if d.UFW != nil {
		if !d.UFW.Done {
			c.Detail = "nothing to do: ufw deleted nothing"
			return nil
		}
		ran, err := d.UFW.restore(ctx, env.Paths)
		c.Detail = ran
		return err
	}
	var ran []string
	var err error
	if d.File != nil && d.File.NewSHA256 != "" {
		var did string
		if did, err = d.File.undo(env.Paths); err != nil {
			return err
		} else if did != "" {
			ran = append(ran, did)
		}
	}
	var live []string
	if d.Backend == "nftables" {
		live, err = d.restoreNft(ctx)
	} else {
		live, err = d.restoreIptables()
	}
	ran = append(ran, live...)
	switch {
	case len(ran) > 0:
		c.Detail = strings.Join(ran, "; ")
	case err == nil:
		c.Detail = fmt.Sprintf("nothing to do: %s/%s/%s/%s holds the rule again", d.Backend, d.Family, d.Table, d.Chain)
	}
	return err
}

func (d *firewallDeleteData) iptables() (*iptables.IPTables, []string, error) {
	bin, err := firewall.IptablesCommand(d.Backend, d.Family)
	if err != nil {
		return nil, nil, err
	}
	proto := iptables.ProtocolIPv4
	if d.Family == "ipv6" {
		proto = iptables.ProtocolIPv6
	}
	ipt, err := iptables.New(iptables.Path(bin), iptables.IPFamily(proto), iptables.Timeout(int(firewall.XtablesLockWait.Seconds())))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", bin, err)
	}
	words, err := firewall.SplitWords(d.Spec)
	if err != nil {
		return nil, nil, fmt.Errorf("spec %q: %w", d.Spec, err)
	}
	return ipt, words, nil
}

// listIptables returns the words of each rule of the chain (after "-A CHAIN"), in order.
// Rules are compared by words, so quoting differences between outputs don't matter. A
// missing chain holds no rule.
func (d *firewallDeleteData) listIptables(ipt *iptables.IPTables) ([][]string, error) {
	lines, err := ipt.List(d.Table, d.Chain)
	if err != nil {
		var ie *iptables.Error
		if errors.As(err, &ie) && ie.IsNotExist() {
			return nil, nil
		}
		return nil, iptablesError("list", d, err)
	}
	var rules [][]string
	for _, line := range lines {
		w, err := firewall.SplitWords(line)
		if err != nil || len(w) < 2 || w[0] != "-A" {
			continue
		}
		rules = append(rules, w[2:])
	}
	return rules, nil
}

// chainNow reads the rule's chain as it is now: the iptables handle, the rule's words and
// the words of every rule of the chain.
func (d *firewallDeleteData) chainNow() (*iptables.IPTables, []string, [][]string, error) {
	ipt, words, err := d.iptables()
	if err != nil {
		return nil, nil, nil, err
	}
	rules, err := d.listIptables(ipt)
	return ipt, words, rules, err
}

// removals says where the first n copies of words go as `iptables -D` takes them, front to
// back: each one's 1-based position and the spec of the rule before it, taken just before
// it goes. Undo puts each copy back there. n is at most the copies rules holds.
func removals(rules [][]string, words []string, n int) (positions []int, previous []*string) {
	rules = slices.Clone(rules)
	for range n {
		i := indexesOf(rules, words)[0]
		var prev *string
		if i > 0 {
			spec := firewall.QuoteWords(rules[i-1])
			prev = &spec
		}
		positions = append(positions, i+1)
		previous = append(previous, prev)
		rules = slices.Delete(rules, i, i+1)
	}
	return positions, previous
}

// indexesOf lists where words sits in rules (0-based).
func indexesOf(rules [][]string, words []string) []int {
	var found []int
	for i, r := range rules {
		if slices.Equal(r, words) {
			found = append(found, i)
		}
	}
	return found
}

// deleteIptables deletes the planned number of copies of the rule, re-reading the chain
// first: the rule is recognised by its exact spec wherever a reload has moved it, and
// one that is gone already is left gone.
func (d *firewallDeleteData) deleteIptables() error {
	ipt, words, rules, err := d.chainNow()
	if err != nil {
		return err
	}
	found := indexesOf(rules, words)
	positions, previous := removals(rules, words, min(len(found), max(d.Copies, 1)))
	d.Positions, d.Previous, d.Remaining = nil, nil, len(found)
	// Only the copies actually deleted are recorded, so a failure part way leaves a
	// record undo can trust.
	for k := range positions {
		if err := ipt.Delete(d.Table, d.Chain, words...); err != nil {
			return iptablesError("delete", d, err)
		}
		d.Positions = append(d.Positions, positions[k])
		d.Previous = append(d.Previous, previous[k])
		d.Remaining--
	}
	return nil
}

// restoreIptables inserts the copies that are missing, back to front, each right after
// the rule that preceded it (the one nearest its old position if several read alike), or
// at its old position when that neighbour is gone too. Copies already back (after a crash
// between the undo and its record) are not inserted again.
func (d *firewallDeleteData) restoreIptables() ([]string, error) {
	ipt, words, rules, err := d.chainNow()
	if err != nil {
		return nil, err
	}
	missing := d.Remaining + len(d.Positions) - len(indexesOf(rules, words))
	bin, _ := firewall.IptablesCommand(d.Backend, d.Family)
	var ran []string
	for i := len(d.Positions) - 1; i >= 0 && missing > 0; i, missing = i-1, missing-1 {
		pos := min(d.Positions[i], len(rules)+1)
		if i < len(d.Previous) {
			pos = 1 + besideNeighbour(d.Previous[i], func(prev string) []int {
				words, err := firewall.SplitWords(prev)
				if err != nil {
					return nil
				}
				return indexesOf(rules, words)
			}, d.Positions[i]-1, pos-1)
		}
		if err := ipt.Insert(d.Table, d.Chain, pos, words...); err != nil {
			return ran, iptablesError("insert", d, err)
		}
		ran = append(ran, firewall.QuoteWords(append([]string{filepath.Base(bin), "-t", d.Table, "-I", d.Chain, fmt.Sprint(pos)}, words...)))
		rules = slices.Insert(rules, pos-1, words)
	}
	return ran, nil
}

// besideNeighbour is the 0-based index right after the rule prev (nil: the chain's
// start), where find lists prev's indexes; of several copies, the one nearest where it
// was (old-1) counts. Without prev in the chain it is fallback.
func besideNeighbour(prev *string, find func(prev string) []int, old, fallback int) int {
	if prev == nil {
		return 0
	}
	best := -1
	for _, j := range find(*prev) {
		if best < 0 || abs(j-(old-1)) < abs(best-(old-1)) {
			best = j
		}
	}
	if best < 0 {
		return fallback
	}
	return best + 1
}

func abs(n int) int { return max(n, -n) }

// iptablesError says what failed; a held xtables lock is worth its own words.
func iptablesError(op string, d *firewallDeleteData, err error) error {
	if strings.Contains(err.Error(), "xtables lock") {
		return fmt.Errorf("%s %s/%s/%s/%s: the xtables lock %s is held by another program; nothing was changed, run again: %w", op, d.Backend, d.Family, d.Table, d.Chain, firewall.XtablesLockPath(), err)
	}
	return fmt.Errorf("%s %s/%s/%s/%s: %w", op, d.Backend, d.Family, d.Table, d.Chain, err)
}

// nftRule is a rule as `nft -j list chain` prints it.
type nftRule struct {
	Handle  int             `json:"handle"`
	Expr    json.RawMessage `json:"expr"`
	Comment string          `json:"comment"`
}

// listNftChain returns the rules of a chain, nil if the chain or table is gone.
func (d *firewallDeleteData) listNftChain(ctx context.Context) ([]nftRule, error) {
	fam, table, _ := strings.Cut(d.Table, " ")
	out, err := runNft(ctx, nil, "-j", "list", "chain", fam, table, d.Chain)
	if err != nil {
		// Only nft's own answer (exit 1, "Error: No such file or directory") says the
		// chain is gone; nft failing to run at all (a missing library, exit 127) says
		// nothing about the rules.
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 1 && strings.Contains(err.Error(), "Error: No such file or directory") {
			return nil, nil
		}
		return nil, err
	}
	var doc struct {
		Nftables []struct {
			Rule *nftRule `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("parse nft output: %w", err)
	}
	var rules []nftRule
	for _, o := range doc.Nftables {
		if o.Rule != nil {
			rules = append(rules, *o.Rule)
		}
	}
	return rules, nil
}

func (d *firewallDeleteData) deleteNft(ctx context.Context) error {
	chain, err := d.listNftChain(ctx)
	if err != nil {
		return err
	}
	d.Positions, d.Previous, d.Expr, d.Comment = nil, nil, nil, ""
	index := -1
	for i, r := range chain {
		if r.Handle == d.Handle {
			if got := firewall.NftRuleSpec(r.Expr, r.Comment); got != d.Spec {
				return &skipError{fmt.Sprintf("nftables %s %s handle %d now holds another rule (%s), not the one planned; nothing was deleted, run again to re-read the rules", d.Table, d.Chain, d.Handle, got)}
			}
			index = i
		}
	}
	if index < 0 {
		// The ruleset was reloaded and handles changed: the same rule, if it is there
		// exactly once, is still the one meant.
		var same []int
		for i, r := range chain {
			if firewall.NftRuleSpec(r.Expr, r.Comment) == d.Spec {
				same = append(same, i)
			}
		}
		switch len(same) {
		case 0:
			return nil
		case 1:
			index = same[0]
			d.Handle = chain[index].Handle
		default:
			return &skipError{fmt.Sprintf("nftables %s %s: handle %d is gone and %d rules read %q, so which one was planned is unclear; nothing was deleted, run again to re-read the rules", d.Table, d.Chain, d.Handle, len(same), d.Spec)}
		}
	}
	fam, table, _ := strings.Cut(d.Table, " ")
	if _, err := runNft(ctx, nil, "delete", "rule", fam, table, d.Chain, "handle", fmt.Sprint(d.Handle)); err != nil {
		return err
	}
	d.Positions, d.Expr, d.Comment = []int{index}, chain[index].Expr, chain[index].Comment
	d.Previous = []*string{nil}
	if index > 0 {
		spec := firewall.NftRuleSpec(chain[index-1].Expr, chain[index-1].Comment)
		d.Previous[0] = &spec
	}
	return nil
}

// restoreNft adds the rule back right after the rule that preceded it (else at the index
// it had), unless the chain holds it again.
func (d *firewallDeleteData) restoreNft(ctx context.Context) ([]string, error) {
	if len(d.Positions) == 0 {
		return nil, nil
	}
	chain, err := d.listNftChain(ctx)
	if err != nil {
		return nil, err
	}
	specs := make([]string, len(chain))
	for i, r := range chain {
		if specs[i] = firewall.NftRuleSpec(r.Expr, r.Comment); specs[i] == d.Spec {
			return nil, nil
		}
	}
	index := d.Positions[0]
	if len(d.Previous) > 0 {
		index = besideNeighbour(d.Previous[0], func(prev string) []int {
			var found []int
			for i, s := range specs {
				if s == prev {
					found = append(found, i)
				}
			}
			return found
		}, d.Positions[0], index)
	}
	fam, table, _ := strings.Cut(d.Table, " ")
	rule := map[string]any{"family": fam, "table": table, "chain": d.Chain, "expr": d.Expr}
	if d.Comment != "" {
		rule["comment"] = d.Comment
	}
	verb := "add"
	if index < len(chain) {
		verb, rule["index"] = "insert", index
	}
	doc, err := json.Marshal(map[string]any{"nftables": []any{map[string]any{verb: map[string]any{"rule": rule}}}})
	if err != nil {
		return nil, err
	}
	if _, err = runNft(ctx, doc, "-j", "-f", "-"); err != nil {
		return nil, err
	}
	return []string{"echo " + firewall.QuoteWords([]string{string(doc)}) + " | " + firewall.QuoteWords([]string{paths.Nft, "-j", "-f", "-"})}, nil
}

// runNft runs nft with stdin and returns its output.
func runNft(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, paths.Nft, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", paths.Nft, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}
