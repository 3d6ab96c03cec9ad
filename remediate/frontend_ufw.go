package remediate

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/imdsmend/imdsmend/facts/firewall"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/internal/types"
)

// UFW keeps its user rules in /etc/ufw/user.rules (user6.rules), each under a tuple
// comment ufw itself reads back:
//
//	### tuple ### deny any any 169.254.169.254 any 0.0.0.0/0 out
//	-A ufw-user-output -d 169.254.169.254 -j DROP
//
// Editing the -A line alone would not last: ufw writes the file again from its tuples. So
// imdsmend changes UFW's rules through ufw (`ufw delete deny out to 169.254.169.254`,
// `ufw allow out to 169.254.169.254 port 80 proto tcp comment imdsmend`), which changes
// the file and the live rules together, and undoes with `ufw insert N …` / `ufw delete …`.

// ufwMend is a change made through ufw.
type ufwMend struct {
	// Rule is the rule as ufw's command line takes it (deny out to 169.254.169.254).
	Rule []string `json:"rule"`
	// Number is the rule's number in `ufw status numbered` when it was deleted (undo
	// inserts it there again); 0 for a rule firewall_allow adds.
	Number int  `json:"number,omitempty"`
	Done   bool `json:"done,omitempty"`
}

// ufwUserFiles are the files ufw writes from its rules.
var ufwUserFiles = []string{paths.UFWUserRules, paths.UFWUser6Rules}

// planUFWDelete plans deleting the UFW user rule at src through ufw. Without ufw, or for a
// rule of UFW's other files (before.rules: the admin's own text), it returns why not.
func planUFWDelete(p paths.Paths, src firewall.Source) (*ufwMend, string) {
	where := fmt.Sprintf("%s:%d", src.File, src.Line)
	if src.File != paths.UFWUserRules && src.File != paths.UFWUser6Rules {
		return nil, fmt.Sprintf("it returns with the next ufw reload or boot, from %s: imdsmend deletes it live only (ufw changes only its user rules)", where)
	}
	if _, err := exec.LookPath(paths.UFW); err != nil {
		return nil, fmt.Sprintf("it returns with the next ufw reload or boot, from %s: ufw is not installed to delete it there", where)
	}
	rule, number, err := ufwUserRule(p, src)
	if err != nil {
		return nil, fmt.Sprintf("it returns with the next ufw reload or boot, from %s: %v", where, err)
	}
	return &ufwMend{Rule: rule, Number: number}, ""
}

// ufwUserRule reads the tuple of the rule at src and its number: the user rules of
// user.rules come first, then those of user6.rules.
func ufwUserRule(p paths.Paths, src firewall.Source) ([]string, int, error) {
	number := 0
	for _, f := range ufwUserFiles {
		data, err := p.ReadFile(f)
		if err != nil {
			if f == src.File {
				return nil, 0, err
			}
			continue
		}
		lines := strings.Split(string(data), "\n")
		if f != src.File {
			number += countTuples(lines)
			continue
		}
		if src.Line < 1 || src.Line > len(lines) {
			return nil, 0, fmt.Errorf("%s has no line %d now", f, src.Line)
		}
		for n := src.Line - 1; n >= 1; n-- {
			tuple, ok := strings.CutPrefix(strings.TrimSpace(lines[n-1]), "### tuple ###")
			if !ok {
				continue
			}
			rule, err := ufwTupleRule(tuple)
			return rule, number + countTuples(lines[:n]), err
		}
		return nil, 0, fmt.Errorf("no ufw rule (### tuple ###) holds line %d of %s", src.Line, f)
	}
	return nil, 0, fmt.Errorf("%s is not a file of ufw's user rules", src.File)
}

func countTuples(lines []string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "### tuple ###") {
			n++
		}
	}
	return n
}

// ufwTupleRule turns a tuple (ACTION PROTO DPORT DST SPORT SRC DIRECTION[_IFACE]
// [comment=HEX]) back into ufw's command line. Application rules, route rules and logging
// actions are left to the admin.
func ufwTupleRule(tuple string) ([]string, error) {
	f := strings.Fields(tuple)
	var comment string
	if len(f) > 0 && strings.HasPrefix(f[len(f)-1], "comment=") {
		b, err := hex.DecodeString(strings.TrimPrefix(f[len(f)-1], "comment="))
		if err != nil {
			return nil, fmt.Errorf("tuple %q: bad comment", tuple)
		}
		comment, f = string(b), f[:len(f)-1]
	}
	if len(f) != 7 {
		return nil, fmt.Errorf("tuple %q is an application or route rule, which imdsmend does not rewrite", strings.TrimSpace(tuple))
	}
	action, proto, dport, dst, sport, src, dir := f[0], f[1], f[2], f[3], f[4], f[5], f[6]
	switch action {
	case "allow", "deny", "reject", "limit":
	default:
		return nil, fmt.Errorf("tuple %q: action %q is not one imdsmend rewrites", strings.TrimSpace(tuple), action)
	}
	direction, iface, _ := strings.Cut(dir, "_")
	if direction != "in" && direction != "out" {
		return nil, fmt.Errorf("tuple %q: direction %q", strings.TrimSpace(tuple), dir)
	}
	any := func(a string) string {
		if a == "0.0.0.0/0" || a == "::/0" {
			return "any"
		}
		return a
	}
	rule := []string{action, direction}
	if iface != "" {
		rule = append(rule, "on", iface)
	}
	if proto != "any" {
		rule = append(rule, "proto", proto)
	}
	rule = append(rule, "from", any(src))
	if sport != "any" {
		rule = append(rule, "port", sport)
	}
	rule = append(rule, "to", any(dst))
	if dport != "any" {
		rule = append(rule, "port", dport)
	}
	if comment != "" {
		rule = append(rule, "comment", comment)
	}
	return rule, nil
}

// withoutComment is rule without its comment, as `ufw delete` matches rules.
func withoutComment(rule []string) []string {
	for i, w := range rule {
		if w == "comment" {
			return rule[:i]
		}
	}
	return rule
}

// runUFW runs ufw; a failure (ufw missing, /etc/ufw not writable, a rule ufw doesn't
// know) is a skip with ufw's own words: nothing was changed.
func runUFW(ctx context.Context, args ...string) (string, error) {
	return runFrontEnd(ctx, paths.UFW, "; nothing was changed", args...)
}

// runFrontEnd runs a firewall front end's tool in the C locale and returns its command
// line; a failure is a skip quoting the tool's output, then suffix.
func runFrontEnd(ctx context.Context, bin, suffix string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	line := firewall.QuoteWords(append([]string{bin}, args...))
	if err := cmd.Run(); err != nil {
		return line, &skipError{fmt.Sprintf("%s failed (%v): %s%s", line, err, strings.TrimSpace(out.String()), suffix)}
	}
	return line, nil
}

// delete deletes the rule through ufw.
func (u *ufwMend) delete(ctx context.Context) (string, error) {
	line, err := runUFW(ctx, append([]string{"--force", "delete"}, withoutComment(u.Rule)...)...)
	u.Done = err == nil
	return line, err
}

// restore inserts a deleted rule at its old number, or appends it when there are fewer
// rules now.
func (u *ufwMend) restore(ctx context.Context, p paths.Paths) (string, error) {
	count := 0
	for _, f := range ufwUserFiles {
		if data, err := p.ReadFile(f); err == nil {
			count += countTuples(strings.Split(string(data), "\n"))
		}
	}
	args := u.Rule
	if u.Number >= 1 && u.Number <= count {
		args = append([]string{"insert", strconv.Itoa(u.Number)}, u.Rule...)
	}
	return runUFW(ctx, args...)
}

// applyUFW deletes d's rule through ufw, which deletes it live and from user.rules.
func (d *firewallDeleteData) applyUFW(ctx context.Context, c *Change) error {
	ran, err := d.UFW.delete(ctx)
	var skip *skipError
	switch {
	case errors.As(err, &skip):
		c.Status, c.Error = types.StatusSkipped, skip.reason
		return nil
	case err != nil:
		return err
	}
	c.Detail = ran
	c.Data, err = json.Marshal(d)
	return err
}

// planUFWAllow is the ufw rule that allows TCP to IMDS port 80 out, or why ufw can't add
// it (then the ACCEPT goes in live only).
func planUFWAllow(dst string, uid *uint32) (*ufwMend, string) {
	if uid != nil {
		return nil, "ufw can't match a uid, so the ACCEPT is added live only: the next ufw reload or boot removes it"
	}
	if _, err := exec.LookPath(paths.UFW); err != nil {
		return nil, "ufw is not installed, so the ACCEPT is added live only: the next ufw reload or boot removes it"
	}
	return &ufwMend{Rule: []string{"allow", "out", "proto", "tcp", "from", "any", "to", dst, "port", "80", "comment", AllowComment}}, ""
}

// inUserRules reports whether ufw's user rules hold the rule: a tuple that reads back as
// it, comment aside.
func (u *ufwMend) inUserRules(p paths.Paths) bool {
	want := strings.Join(withoutComment(u.Rule), " ")
	for _, f := range ufwUserFiles {
		data, err := p.ReadFile(f)
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(data)) {
			if tuple, ok := strings.CutPrefix(strings.TrimSpace(line), "### tuple ###"); ok {
				if rule, err := ufwTupleRule(tuple); err == nil && strings.Join(withoutComment(rule), " ") == want {
					return true
				}
			}
		}
	}
	return false
}
