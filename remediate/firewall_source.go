package remediate

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/imdsmend/imdsmend/facts/firewall"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/zclconf/go-cty/cty"
)

// A rule deleted only from the kernel comes back when its front end loads its file again
// (a reload, a boot). firewall_delete therefore mends the file that holds the rule
// (facts.firewall.rules[*].source) together with the live rule: the rule's line is cut
// out, every other byte kept, after checking the file is still what was planned against
// (its SHA-256), through an atomic rename, with the original kept in the state directory
// for undo. Files of front ends that rewrite them from their own state (UFW's user.rules,
// firewalld's XML) are not edited this way; the action says the rule will return, and
// from where.

// mendableFrontEnds load their file as it is, so cutting the line is the mend.
var mendableFrontEnds = []string{firewall.FrontEndNetfilterPersistent, firewall.FrontEndIptablesServices, firewall.FrontEndNftables}

// sourceMend is the edit of a rule's persisted file, in the firewall_delete record.
type sourceMend struct {
	FrontEnd string `json:"front_end"`
	Path     string `json:"path"` // as on the system
	SHA256   string `json:"sha256"`
	Cuts     []cut  `json:"cuts"`
	// Set by Apply.
	Backup    string `json:"backup,omitempty"`
	NewSHA256 string `json:"new_sha256,omitempty"`
}

// cut is one line taken out of the file: bytes [Start, End) of the original, Line 1-based.
type cut struct {
	Line  int    `json:"line"`
	Start int    `json:"start"`
	End   int    `json:"end"`
	Text  string `json:"text"`
	// Insert is written in place of Text (firewall_allow's line; empty for a cut).
	Insert string `json:"insert,omitempty"`
}

// decodeSource reads the optional source attribute of a rule object.
func decodeSource(v cty.Value) firewall.Source {
	if !v.Type().IsObjectType() || !v.Type().HasAttribute("source") {
		return firewall.Source{}
	}
	s := v.GetAttr("source")
	if s.IsNull() || !s.IsKnown() {
		return firewall.Source{}
	}
	var src firewall.Source
	if a := s.GetAttr("front_end"); !a.IsNull() && a.IsKnown() {
		src.FrontEnd = a.AsString()
	}
	if a := s.GetAttr("file"); !a.IsNull() && a.IsKnown() {
		src.File = a.AsString()
	}
	if a := s.GetAttr("line"); !a.IsNull() && a.IsKnown() {
		n, _ := a.AsBigFloat().Int64()
		src.Line = int(n)
	}
	return src
}

// planMend adds src's line to d's file edit, or returns why the file stays as it is: the
// sentence the action's detail carries, saying that the rule returns and from where.
func planMend(p paths.Paths, d *firewallDeleteData, src firewall.Source) (note string) {
	where := src.File
	if src.Line > 0 {
		where = fmt.Sprintf("%s:%d", src.File, src.Line)
	}
	switch {
	case src.File == "" && (src.FrontEnd == "" || src.FrontEnd == firewall.FrontEndLive):
		return ""
	case src.File == "":
		return fmt.Sprintf("made by %s, in none of its files imdsmend reads: %s may add it again", src.FrontEnd, src.FrontEnd)
	case src.FrontEnd == firewall.FrontEndFirewalld:
		f, note := planFirewalldDelete(p, src)
		if f != nil {
			d.Firewalld = f
		}
		return note
	case src.FrontEnd == firewall.FrontEndUFW:
		u, note := planUFWDelete(p, src)
		if u != nil {
			d.UFW = u
		}
		return note
	case !slices.Contains(mendableFrontEnds, src.FrontEnd):
		return fmt.Sprintf("it returns with the next %s reload or boot, from %s: imdsmend deletes it live only", src.FrontEnd, where)
	case d.File != nil && d.File.Path != src.File:
		return fmt.Sprintf("it returns at boot from %s: imdsmend mends one file per rule (%s)", where, d.File.Path)
	}
	data, err := p.ReadFile(src.File)
	if err != nil {
		return fmt.Sprintf("it returns at boot from %s, which can't be read to mend it: %v", where, err)
	}
	c, err := lineCut(data, src.Line)
	if err == nil {
		err = checkLine(c.Text, d, src.FrontEnd)
	}
	if err != nil {
		return fmt.Sprintf("it returns at boot from %s, which imdsmend leaves alone: %v", where, err)
	}
	if d.File == nil {
		d.File = &sourceMend{FrontEnd: src.FrontEnd, Path: src.File, SHA256: digest(data)}
	}
	if !slices.ContainsFunc(d.File.Cuts, func(o cut) bool { return o.Line == c.Line }) {
		d.File.Cuts = append(d.File.Cuts, c)
		slices.SortFunc(d.File.Cuts, func(a, b cut) int { return a.Start - b.Start })
	}
	return ""
}

// lineCut is line n (1-based) of data with its newline.
func lineCut(data []byte, n int) (cut, error) {
	start := 0
	for i := 1; i < n; i++ {
		j := bytes.IndexByte(data[start:], '\n')
		if j < 0 {
			return cut{}, fmt.Errorf("it has no line %d now", n)
		}
		start += j + 1
	}
	if n < 1 || start >= len(data) {
		return cut{}, fmt.Errorf("it has no line %d now", n)
	}
	end := len(data)
	if j := bytes.IndexByte(data[start:], '\n'); j >= 0 {
		end = start + j + 1
	}
	return cut{Line: n, Start: start, End: end, Text: string(data[start:end])}, nil
}

// checkLine makes sure the line still holds the rule and nothing else.
func checkLine(line string, d *firewallDeleteData, frontEnd string) error {
	if frontEnd == firewall.FrontEndNftables {
		if !firewall.NftSingleRuleLine(line) {
			return fmt.Errorf("line %q holds more than the rule", strings.TrimSpace(line))
		}
		return nil
	}
	if !firewall.RestoreLineHolds(line, d.Chain, d.Spec, d.Family == "ipv6") {
		return fmt.Errorf("the line no longer reads as the rule (%q)", strings.TrimSpace(line))
	}
	return nil
}

// applyMend cuts the lines out of the file if it is still what was planned against,
// keeping the original in the state directory. It returns a function that puts the
// original back, for when the live deletion fails after it.
func (m *sourceMend) apply(p paths.Paths) (func() error, error) {
	data, err := p.ReadFile(m.Path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", m.Path, err)
	}
	if digest(data) != m.SHA256 {
		return nil, &skipError{fmt.Sprintf("%s changed since the plan, so it may no longer hold the rule as read; nothing was changed, run again to re-read it", m.Path)}
	}
	var out []byte
	prev := 0
	for _, c := range m.Cuts {
		if c.Start < prev || c.End > len(data) || string(data[c.Start:c.End]) != c.Text {
			return nil, fmt.Errorf("%s: the planned cut at line %d does not match the file", m.Path, c.Line)
		}
		out = append(out, data[prev:c.Start]...)
		out = append(out, c.Insert...)
		prev = c.End
	}
	out = append(out, data[prev:]...)
	m.Backup = path.Join(p.StateDir, "backups", m.SHA256)
	if err := p.MkdirAll(path.Dir(m.Backup), 0o700); err != nil {
		return nil, fmt.Errorf("create backup directory: %w", err)
	}
	if err := p.WriteFile(m.Backup, data, 0o600); err != nil {
		return nil, fmt.Errorf("back up %s: %w", m.Path, err)
	}
	mode, err := fileMode(p, m.Path)
	if err != nil {
		return nil, err
	}
	if err := p.WriteFile(m.Path, out, mode); err != nil {
		return nil, fmt.Errorf("%s is unchanged: %w (a read-only file system or an immutable file? see lsattr)", m.Path, err)
	}
	m.NewSHA256 = digest(out)
	return func() error { return p.WriteFile(m.Path, data, mode) }, nil
}

// fileMode is the permission bits of the file, kept across the rewrite.
func fileMode(p paths.Paths, abs string) (fs.FileMode, error) {
	f, err := p.OpenFile(abs, 0, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Mode().Perm(), nil
}

// undo puts the original file back unless it changed after imdsmend edited it, and says
// what it did.
func (m *sourceMend) undo(p paths.Paths) (string, error) {
	current, err := p.ReadFile(m.Path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", m.Path, err)
	}
	switch digest(current) {
	case m.SHA256:
		return "", nil
	case m.NewSHA256:
	default:
		return "", fmt.Errorf("%s changed after imdsmend edited it; not restored, so those changes stay. The original is in %s", m.Path, p.File(m.Backup))
	}
	orig, err := p.ReadFile(m.Backup)
	if err != nil {
		return "", fmt.Errorf("read backup of %s: %w", m.Path, err)
	}
	if digest(orig) != m.SHA256 {
		return "", errors.New("the backup " + p.File(m.Backup) + " does not hold the original of " + m.Path + "; not restored")
	}
	mode, err := fileMode(p, m.Path)
	if err != nil {
		return "", err
	}
	if err := p.WriteFile(m.Path, orig, mode); err != nil {
		return "", fmt.Errorf("restore %s: %w", m.Path, err)
	}
	return fmt.Sprintf("restored %s as it was (%d line(s) back)", m.Path, len(m.Cuts)), nil
}

// describeInsert is the detail's words for firewall_allow's line.
func (m *sourceMend) describeInsert() string {
	c := m.Cuts[0]
	return fmt.Sprintf("and in %s (%s), before line %d: %s", m.Path, m.FrontEnd, c.Line, strings.TrimSpace(c.Insert))
}

// describe is the detail's words for the file edit.
func (m *sourceMend) describe() string {
	lines := make([]string, len(m.Cuts))
	for i, c := range m.Cuts {
		lines[i] = fmt.Sprint(c.Line)
	}
	return fmt.Sprintf("and from %s (%s), line %s: %s", m.Path, m.FrontEnd, strings.Join(lines, ", "), strings.TrimSpace(m.Cuts[0].Text))
}
