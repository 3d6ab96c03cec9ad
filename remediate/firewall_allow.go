package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/imdsmend/imdsmend/facts/firewall"
	"github.com/imdsmend/imdsmend/facts/route"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/zclconf/go-cty/cty"
)

// FirewallAllow opens IMDS past a rule it must not delete — a chain's DROP policy (a
// default-deny host), a DROP of all output — with the narrowest ACCEPT: TCP to the IMDS
// address of the rule's family, port 80, optionally only for some uids, marked with the
// comment "imdsmend". It goes right before the first of the given rules in each table (at
// the chain's end for a policy), so restrictions before it (an owner-scoped REJECT) still
// apply, and into the rules file that holds that rule when imdsmend can edit it. The
// default policy is never changed. Undo deletes the ACCEPT and restores the file.
type FirewallAllow struct{}

// AllowComment marks the rules firewall_allow adds.
const AllowComment = "imdsmend"

// Kind implements Fixer.
func (FirewallAllow) Kind() string { return "firewall_allow" }

// Doc implements Fixer.
func (FirewallAllow) Doc() string {
	return "insert an ACCEPT for TCP to IMDS port 80 before the given blocking rules (objects of facts.firewall.rules, e.g. a DROP policy); undo deletes it"
}

// Permission implements Fixer.
func (FirewallAllow) Permission() types.Permission { return types.PermFirewall }

// Spec implements Fixer: `rules` as for firewall_delete, `uids` optional.
func (FirewallAllow) Spec() hcldec.Spec {
	spec := FirewallDelete{}.Spec().(*hcldec.ObjectSpec)
	(*spec)["uids"] = &hcldec.AttrSpec{Name: "uids", Type: cty.List(cty.Number)}
	return spec
}

// firewallAllowData is the record of one ACCEPT.
type firewallAllowData struct {
	Backend string `json:"backend"`
	Family  string `json:"family"`
	Table   string `json:"table"`
	Chain   string `json:"chain"`
	// Before is the spec of the rule the ACCEPT goes before; a policy ("-P …") appends.
	Before string `json:"before"`
	// Spec is the ACCEPT as iptables -S (or imdsmend's nft text) prints it; Words the
	// iptables words, Expr the nft expression.
	Spec  string          `json:"spec"`
	Words []string        `json:"words,omitempty"`
	Expr  json.RawMessage `json:"expr,omitempty"`
	File  *sourceMend     `json:"file,omitempty"`
	// UFW is the rule added through ufw instead, where UFW owns the ruleset.
	UFW *ufwMend `json:"ufw,omitempty"`
	// Firewalld is the rich rule added to a firewalld policy instead.
	Firewalld *firewalldAllow `json:"firewalld,omitempty"`
	// Added is set by Apply when it inserted the rule (not when it was there already).
	Added bool `json:"added,omitempty"`
}

// Plan implements Fixer: one change per table, family and uid, before the first rule
// given there.
func (FirewallAllow) Plan(_ context.Context, env *Env, args cty.Value) ([]*Change, error) {
	list := args.GetAttr("rules")
	if list.IsNull() || !list.IsKnown() {
		return nil, errors.New("rules is null or unknown")
	}
	uids := []*uint32{nil}
	if u := args.GetAttr("uids"); !u.IsNull() && u.IsKnown() && u.LengthInt() > 0 {
		uids = nil
		for it := u.ElementIterator(); it.Next(); {
			_, v := it.Element()
			n, acc := v.AsBigFloat().Uint64()
			if acc != 0 || n > 1<<32-1 {
				return nil, fmt.Errorf("uids: %s is not a uid", v.AsBigFloat().String())
			}
			id := uint32(n)
			uids = append(uids, &id)
		}
	}
	var p paths.Paths
	if env != nil {
		p = env.Paths
	}
	var changes []*Change
	seen := map[string]bool{}
	for i, it := 0, list.ElementIterator(); it.Next(); i++ {
		_, v := it.Element()
		r, err := decodeFirewallRule(v)
		if err != nil {
			return nil, fmt.Errorf("rules[%d]: %w", i, err)
		}
		group := r.Backend + "/" + r.Family + "/" + r.Table
		if seen[group] {
			continue
		}
		seen[group] = true
		for _, uid := range uids {
			c, err := planAllow(p, r, rulePosition(v), decodeSource(v), uid)
			if err != nil {
				return nil, fmt.Errorf("rules[%d]: %w", i, err)
			}
			changes = append(changes, c)
		}
	}
	return changes, nil
}

// planAllow builds the ACCEPT that goes before r.
// position is the rule's as the facts read it; Apply finds the rule again wherever it is
// by then.
func planAllow(p paths.Paths, r firewallDeleteData, position int, src firewall.Source, uid *uint32) (*Change, error) {
	d := firewallAllowData{Backend: r.Backend, Family: r.Family, Table: r.Table, Chain: r.Chain, Before: r.Spec}
	if _, _, err := (firewallDeleteData{Backend: r.Backend, Family: r.Family, Table: r.Table, Chain: r.Chain, Spec: "-j ACCEPT", Handle: 1}).describe(); err != nil {
		return nil, err
	}
	v6 := r.Family == "ipv6"
	dst := route.IMDSAddr(v6)
	var cmd []string
	var fileLine string
	if r.Backend == "nftables" {
		proto := map[bool]string{false: "ip", true: "ip6"}[v6]
		expr := []any{
			map[string]any{"match": map[string]any{"op": "==", "left": map[string]any{"payload": map[string]any{"protocol": proto, "field": "daddr"}}, "right": dst.String()}},
			map[string]any{"match": map[string]any{"op": "==", "left": map[string]any{"payload": map[string]any{"protocol": "tcp", "field": "dport"}}, "right": 80}},
		}
		stmt := proto + " daddr " + dst.String() + " tcp dport 80"
		if uid != nil {
			expr = append(expr, map[string]any{"match": map[string]any{"op": "==", "left": map[string]any{"meta": map[string]any{"key": "skuid"}}, "right": *uid}})
			stmt += fmt.Sprintf(" meta skuid %d", *uid)
		}
		expr = append(expr, map[string]any{"accept": nil})
		var err error
		if d.Expr, err = json.Marshal(expr); err != nil {
			return nil, err
		}
		d.Spec = firewall.NftRuleSpec(d.Expr, AllowComment)
		fileLine = stmt + ` accept comment "` + AllowComment + `"`
		fam, table, _ := strings.Cut(r.Table, " ")
		verb := []string{paths.Nft, "add", "rule", fam, table, r.Chain}
		if !strings.HasPrefix(r.Spec, "-P ") {
			verb = []string{paths.Nft, "insert", "rule", fam, table, r.Chain, "position", strconv.Itoa(r.Handle)}
		}
		cmd = append(verb, strings.Fields(fileLine)...)
	} else {
		bits := map[bool]string{false: "/32", true: "/128"}[v6]
		d.Words = []string{"-d", dst.String() + bits, "-p", "tcp", "-m", "tcp", "--dport", "80"}
		if uid != nil {
			d.Words = append(d.Words, "-m", "owner", "--uid-owner", strconv.FormatUint(uint64(*uid), 10))
		}
		d.Words = append(d.Words, "-m", "comment", "--comment", AllowComment, "-j", "ACCEPT")
		d.Spec = firewall.QuoteWords(d.Words)
		fileLine = "-A " + r.Chain + " " + d.Spec
		bin, err := firewall.IptablesCommand(r.Backend, r.Family)
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(r.Spec, "-P ") {
			cmd = append([]string{filepath.Base(bin), "-t", r.Table, "-A", r.Chain}, d.Words...)
		} else {
			cmd = append([]string{filepath.Base(bin), "-t", r.Table, "-I", r.Chain, strconv.Itoa(max(position, 1))}, d.Words...)
		}
	}
	detail := firewall.QuoteWords(cmd)
	if src.FrontEnd == firewall.FrontEndUFW && r.Backend != "nftables" {
		rule, note := planUFWAllow(dst.String(), uid)
		if rule != nil {
			d.UFW = rule
			detail = firewall.QuoteWords(append([]string{paths.UFW}, rule.Rule...)) + " (UFW owns this ruleset: ufw adds the rule live and to its files)"
		} else {
			detail += "; " + note
		}
	} else if src.FrontEnd == firewall.FrontEndFirewalld {
		f, note := planFirewalldAllow(r.Table, r.Chain, map[bool]string{false: "ipv4", true: "ipv6"}[v6], dst.String(), uid)
		if f != nil {
			d.Firewalld = f
			detail = f.describe() + " (firewalld owns this ruleset: the rich rule goes before policy " + f.Policy + "'s target)"
		} else {
			detail += "; " + note
		}
	} else if note := planAllowFile(p, &d, src, fileLine); note != "" {
		detail += "; " + note
	} else if d.File != nil {
		detail += "; " + d.File.describeInsert()
	}
	data, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	target := fmt.Sprintf("%s/%s/%s/%s: %s", d.Backend, d.Family, d.Table, d.Chain, d.Spec)
	return &Change{Target: target, Detail: detail, Data: data}, nil
}

// rulePosition is a rule object's optional position, 0 without one.
func rulePosition(v cty.Value) int {
	if !v.Type().HasAttribute("position") {
		return 0
	}
	a := v.GetAttr("position")
	if a.IsNull() || !a.IsKnown() {
		return 0
	}
	n, _ := a.AsBigFloat().Int64()
	return int(n)
}

// planAllowFile plans the ACCEPT's line in the file that holds the rule it goes before:
// right before that rule's line, or, for a policy, at the chain's end (iptables-restore
// files: before the table's COMMIT; nftables.conf: after the chain's last statement).
// It returns why the file stays as it is, if it does.
func planAllowFile(p paths.Paths, d *firewallAllowData, src firewall.Source, fileLine string) string {
	switch {
	case src.File == "" && (src.FrontEnd == "" || src.FrontEnd == firewall.FrontEndLive):
		return ""
	case src.File == "" || !slices.Contains(mendableFrontEnds, src.FrontEnd):
		return fmt.Sprintf("%s owns this ruleset and imdsmend adds the rule live only: the next %s reload or boot removes it", src.FrontEnd, src.FrontEnd)
	}
	data, err := p.ReadFile(src.File)
	if err != nil {
		return fmt.Sprintf("added live only: %s can't be read: %v", src.File, err)
	}
	at, indent, err := allowLine(data, src, d.Chain)
	if err != nil {
		return fmt.Sprintf("added live only, so a boot removes it: %s: %v", src.File, err)
	}
	c, err := lineCut(data, at)
	if err != nil {
		// At the file's end: insert there.
		c = cut{Line: at, Start: len(data), End: len(data)}
		if len(data) > 0 && data[len(data)-1] != '\n' {
			indent = "\n" + indent
		}
	}
	d.File = &sourceMend{FrontEnd: src.FrontEnd, Path: src.File, SHA256: digest(data),
		Cuts: []cut{{Line: c.Line, Start: c.Start, End: c.Start, Insert: indent + fileLine + lineEnding(data, c.Start)}}}
	return ""
}

// allowLine is the 1-based line before which the ACCEPT goes, and the indentation to give
// it.
func allowLine(data []byte, src firewall.Source, chain string) (int, string, error) {
	lines := strings.SplitAfter(string(data), "\n")
	if src.Line < 1 || src.Line > len(lines) {
		return 0, "", fmt.Errorf("it has no line %d now", src.Line)
	}
	line := lines[src.Line-1]
	indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
	trimmed := strings.TrimSpace(line)
	switch {
	case src.FrontEnd != firewall.FrontEndNftables && strings.HasPrefix(trimmed, ":"):
		for n := src.Line; n < len(lines); n++ {
			if strings.TrimSpace(lines[n]) == "COMMIT" {
				return n + 1, "", nil
			}
		}
		return 0, "", errors.New("its table has no COMMIT line")
	case src.FrontEnd != firewall.FrontEndNftables:
		return src.Line, indent, nil
	case !strings.Contains(trimmed, "policy"):
		if !firewall.NftSingleRuleLine(line) {
			return 0, "", fmt.Errorf("line %d holds more than the rule", src.Line)
		}
		return src.Line, indent, nil
	}
	// An nft policy: after the chain's last rule statement in this file, else right
	// after the policy line.
	last, lastIndent := src.Line, indent
	for _, r := range firewall.NftConfRuleLines(data, chain) {
		if r+1 > src.Line {
			last = r + 1
			l := lines[r]
			lastIndent = l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		}
	}
	return last + 1, lastIndent, nil
}

// Apply implements Fixer.
func (FirewallAllow) Apply(ctx context.Context, env *Env, c *Change) error {
	var d firewallAllowData
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return fmt.Errorf("read change record: %w", err)
	}
	if d.Firewalld != nil {
		ran, err := d.Firewalld.add(ctx)
		var skip *skipError
		if errors.As(err, &skip) {
			c.Status, c.Error = types.StatusSkipped, skip.reason
			return nil
		}
		d.Added, c.Detail = true, ran
		c.Data, err = json.Marshal(d)
		return err
	}
	if d.UFW != nil {
		ran, err := runUFW(ctx, d.UFW.Rule...)
		var skip *skipError
		if errors.As(err, &skip) {
			c.Status, c.Error = types.StatusSkipped, skip.reason
			return nil
		}
		d.UFW.Done, d.Added, c.Detail = true, true, ran
		c.Data, err = json.Marshal(d)
		return err
	}
	var err error
	restoreFile := func() error { return nil }
	if d.File != nil {
		if restoreFile, err = d.File.apply(env.Paths); err != nil {
			var skip *skipError
			if errors.As(err, &skip) {
				c.Status, c.Error = types.StatusSkipped, skip.reason
				return nil
			}
			return err
		}
	}
	var ran string
	if d.Backend == "nftables" {
		ran, err = d.insertNft(ctx)
	} else {
		ran, err = d.insertIptables()
	}
	var skip *skipError
	if err != nil {
		if rerr := restoreFile(); rerr != nil {
			err = fmt.Errorf("%w; and putting %s back failed: %v", err, d.File.Path, rerr)
		}
		if errors.As(err, &skip) {
			c.Status, c.Error = types.StatusSkipped, skip.reason
			return nil
		}
		return err
	}
	d.Added = ran != ""
	if ran != "" {
		c.Detail = ran + strings.TrimPrefix(c.Detail, strings.SplitN(c.Detail, "; ", 2)[0])
	} else if d.File == nil {
		c.Status = types.StatusUnchanged
	}
	c.Data, err = json.Marshal(d)
	return err
}

// insertIptables inserts the ACCEPT right before the first rule that reads Before (or
// appends it for a policy), unless the chain holds it already. It returns the command.
func (d *firewallAllowData) insertIptables() (string, error) {
	del := firewallDeleteData{Backend: d.Backend, Family: d.Family, Table: d.Table, Chain: d.Chain, Spec: d.Spec}
	ipt, _, rules, err := del.chainNow()
	if err != nil {
		return "", err
	}
	if len(indexesOf(rules, d.Words)) > 0 {
		return "", nil
	}
	bin, _ := firewall.IptablesCommand(d.Backend, d.Family)
	if strings.HasPrefix(d.Before, "-P ") {
		if err := ipt.Append(d.Table, d.Chain, d.Words...); err != nil {
			return "", iptablesError("append", &del, err)
		}
		return firewall.QuoteWords(append([]string{filepath.Base(bin), "-t", d.Table, "-A", d.Chain}, d.Words...)), nil
	}
	before, err := firewall.SplitWords(d.Before)
	if err != nil {
		return "", err
	}
	at := indexesOf(rules, before)
	if len(at) == 0 {
		return "", &skipError{fmt.Sprintf("%s/%s/%s/%s no longer holds %s; nothing was added, run again to re-read the rules", d.Backend, d.Family, d.Table, d.Chain, d.Before)}
	}
	if err := ipt.Insert(d.Table, d.Chain, at[0]+1, d.Words...); err != nil {
		return "", iptablesError("insert", &del, err)
	}
	return firewall.QuoteWords(append([]string{filepath.Base(bin), "-t", d.Table, "-I", d.Chain, strconv.Itoa(at[0] + 1)}, d.Words...)), nil
}

// insertNft adds the ACCEPT before the first rule that reads Before (appends it for a
// policy), unless the chain holds it already.
func (d *firewallAllowData) insertNft(ctx context.Context) (string, error) {
	del := firewallDeleteData{Backend: d.Backend, Family: d.Family, Table: d.Table, Chain: d.Chain}
	chain, err := del.listNftChain(ctx)
	if err != nil {
		return "", err
	}
	index := -1
	for i, r := range chain {
		spec := firewall.NftRuleSpec(r.Expr, r.Comment)
		if spec == d.Spec {
			return "", nil
		}
		if index < 0 && spec == d.Before {
			index = i
		}
	}
	fam, table, _ := strings.Cut(d.Table, " ")
	rule := map[string]any{"family": fam, "table": table, "chain": d.Chain, "expr": d.Expr, "comment": AllowComment}
	verb := "add"
	if !strings.HasPrefix(d.Before, "-P ") {
		if index < 0 {
			return "", &skipError{fmt.Sprintf("nftables %s %s no longer holds %s; nothing was added, run again to re-read the rules", d.Table, d.Chain, d.Before)}
		}
		verb, rule["index"] = "insert", index
	}
	doc, err := json.Marshal(map[string]any{"nftables": []any{map[string]any{verb: map[string]any{"rule": rule}}}})
	if err != nil {
		return "", err
	}
	if _, err := runNft(ctx, doc, "-j", "-f", "-"); err != nil {
		return "", err
	}
	return "echo " + firewall.QuoteWords([]string{string(doc)}) + " | " + firewall.QuoteWords([]string{paths.Nft, "-j", "-f", "-"}), nil
}

// Undo implements Fixer: the ACCEPT goes (one copy), the file comes back.
func (FirewallAllow) Undo(ctx context.Context, env *Env, c *Change) error {
	var d firewallAllowData
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return fmt.Errorf("read change record: %w", err)
	}
	if d.Firewalld != nil {
		ran, err := d.Firewalld.remove(ctx)
		if c.Detail = ran; ran == "" && err == nil {
			c.Detail = "nothing to do: firewall-cmd added nothing"
		}
		return err
	}
	if d.UFW != nil {
		if !d.UFW.Done {
			c.Detail = "nothing to do: ufw added nothing"
			return nil
		}
		ran, err := runUFW(ctx, append([]string{"--force", "delete"}, withoutComment(d.UFW.Rule)...)...)
		c.Detail = ran
		return err
	}
	var ran []string
	if d.File != nil && d.File.NewSHA256 != "" {
		did, err := d.File.undo(env.Paths)
		if err != nil {
			return err
		}
		if did != "" {
			ran = append(ran, did)
		}
	}
	if d.Added {
		did, err := d.remove(ctx)
		if err != nil {
			return err
		}
		if did != "" {
			ran = append(ran, did)
		}
	}
	c.Detail = strings.Join(ran, "; ")
	if c.Detail == "" {
		c.Detail = "nothing to do: the ACCEPT imdsmend added is gone already"
	}
	return nil
}

// remove deletes the ACCEPT if the chain holds it.
func (d *firewallAllowData) remove(ctx context.Context) (string, error) {
	del := firewallDeleteData{Backend: d.Backend, Family: d.Family, Table: d.Table, Chain: d.Chain, Spec: d.Spec}
	if d.Backend == "nftables" {
		chain, err := del.listNftChain(ctx)
		if err != nil {
			return "", err
		}
		for _, r := range chain {
			if firewall.NftRuleSpec(r.Expr, r.Comment) == d.Spec {
				fam, table, _ := strings.Cut(d.Table, " ")
				args := []string{"delete", "rule", fam, table, d.Chain, "handle", strconv.Itoa(r.Handle)}
				if _, err := runNft(ctx, nil, args...); err != nil {
					return "", err
				}
				return firewall.QuoteWords(append([]string{paths.Nft}, args...)), nil
			}
		}
		return "", nil
	}
	ipt, _, rules, err := del.chainNow()
	if err != nil {
		return "", err
	}
	if len(indexesOf(rules, d.Words)) == 0 {
		return "", nil
	}
	if err := ipt.Delete(d.Table, d.Chain, d.Words...); err != nil {
		return "", iptablesError("delete", &del, err)
	}
	bin, _ := firewall.IptablesCommand(d.Backend, d.Family)
	return firewall.QuoteWords(append([]string{filepath.Base(bin), "-t", d.Table, "-D", d.Chain}, d.Words...)), nil
}

// Observe implements Fixer: the change is in effect when the chain holds the ACCEPT.
func (FirewallAllow) Observe(ctx context.Context, env *Env, c *Change) (bool, error) {
	var d firewallAllowData
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return false, fmt.Errorf("read change record: %w", err)
	}
	del := firewallDeleteData{Backend: d.Backend, Family: d.Family, Table: d.Table, Chain: d.Chain}
	present := false
	switch {
	case d.Firewalld != nil:
		present = d.Firewalld.observe(ctx)
		d.Added = present
		c.Data, _ = json.Marshal(d)
		return present, nil
	case d.UFW != nil:
		present = d.UFW.inUserRules(env.Paths)
		if present && !d.UFW.Done {
			d.UFW.Done = true
			c.Data, _ = json.Marshal(d)
		}
		return present, nil
	case d.Backend == "nftables":
		chain, err := del.listNftChain(ctx)
		if err != nil {
			return false, err
		}
		present = slices.ContainsFunc(chain, func(r nftRule) bool { return firewall.NftRuleSpec(r.Expr, r.Comment) == d.Spec })
	default:
		_, _, rules, err := del.chainNow()
		if err != nil {
			return false, err
		}
		present = len(indexesOf(rules, d.Words)) > 0
	}
	if present && !d.Added {
		d.Added = true
		data, err := json.Marshal(d)
		if err != nil {
			return false, err
		}
		c.Data = data
	}
	return present, nil
}
