package remediate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/imdsmend/imdsmend/facts/proxy"
	"github.com/imdsmend/imdsmend/internal/redact"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/zclconf/go-cty/cty"
)

// KindNoProxy is the remediation kind of NoProxy.
const KindNoProxy = "no_proxy"

// NoProxy adds the IMDS addresses to the no_proxy lists of files through which IMDS
// requests would go to a proxy. Every no_proxy and NO_PROXY assignment in the file gets
// the addresses it lacks, and a file that sets a proxy gets the spelling it lacks, so curl
// (lower case first) and Go (upper case first) both bypass the proxy. Nothing but those
// insertions changes: every other byte, the mode and the owner stay.
type NoProxy struct{}

// Kind implements Fixer.
func (NoProxy) Kind() string { return KindNoProxy }

// Doc implements Fixer.
func (NoProxy) Doc() string {
	return "add 169.254.169.254 (and fd00:ec2::254 with ipv6) to no_proxy and NO_PROXY in the files that set a proxy"
}

// Permission implements Fixer.
func (NoProxy) Permission() types.Permission { return types.PermFiles }

// Spec implements Fixer: `files` lists the files to fix, as on the system.
func (NoProxy) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{"files": &hcldec.AttrSpec{Name: "files", Type: cty.List(cty.String), Required: true}}
}

// noProxyData is the ledger record of one file edit. It holds no file content: the
// original is kept in the state directory, because files that set a proxy may hold its
// password.
type noProxyData struct {
	Path     string   `json:"path"`     // as on the system
	Resolved string   `json:"resolved"` // Path after symlinks: the file written
	SHA256   string   `json:"sha256"`   // of the content the edit was planned against
	Inserts  []insert `json:"inserts"`
	// Set by Apply.
	Backup    string `json:"backup,omitempty"` // the original content, in the state directory
	NewSHA256 string `json:"new_sha256,omitempty"`
}

// insert adds Text at byte Offset of the original file.
type insert struct {
	Offset int    `json:"offset"`
	Text   string `json:"text"`
}

// Plan implements Fixer.
func (NoProxy) Plan(_ context.Context, env *Env, args cty.Value) ([]*Change, error) {
	files, err := stringList(args, "files")
	if err != nil {
		return nil, err
	}
	hosts := proxy.Hosts(env.IPv6)
	conf := proxy.LoadConfig(env.Paths)
	conf.Evaluate(hosts)
	var changes []*Change
	for _, p := range files {
		f := conf.File(p)
		if f == nil {
			why := "it is not a file imdsmend reads proxy settings from (docs/proxy.md)"
			for _, e := range conf.Errors {
				if strings.HasPrefix(e, p+":") {
					why = e
				}
			}
			changes = append(changes, &Change{Target: p, Status: types.StatusFailed, Error: "cannot edit " + p + ": " + why})
			continue
		}
		ed, err := planNoProxy(f, hosts)
		if err != nil {
			changes = append(changes, &Change{Target: p, Status: types.StatusFailed, Error: err.Error()})
			continue
		}
		if len(ed.inserts) == 0 {
			continue // already bypasses IMDS
		}
		data, err := json.Marshal(noProxyData{Path: f.Path, Resolved: f.Resolved, SHA256: digest(f.Data), Inserts: ed.inserts})
		if err != nil {
			return nil, err
		}
		changes = append(changes, &Change{Target: p, Detail: ed.describe(f, hosts, env), Data: data})
	}
	return changes, nil
}

// Apply implements Fixer: it re-reads the file and writes the planned insertions only if
// the file is still what was planned against.
func (NoProxy) Apply(_ context.Context, env *Env, c *Change) error {
	var d noProxyData
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return fmt.Errorf("decode planned change: %w", err)
	}
	data, resolved, err := proxy.ReadFileInRoot(env.Paths, d.Path, proxy.MaxConfigFile)
	if err != nil {
		return err
	}
	if err := d.unchanged(data, resolved, d.SHA256, "it was planned"); err != nil {
		return err
	}
	updated, err := applyInserts(data, d.Inserts)
	if err != nil {
		return err
	}
	// Keep the original in the state directory, named by its digest, before touching the file.
	d.Backup = path.Join(env.Paths.StateDir, "backups", d.SHA256)
	if err := env.Paths.MkdirAll(path.Dir(d.Backup), 0o700); err != nil {
		return fmt.Errorf("create backup directory: %w", err)
	}
	if err := env.Paths.WriteFile(d.Backup, data, 0o600); err != nil {
		return fmt.Errorf("back up %s: %w", d.Path, err)
	}
	if err := env.Paths.WriteFile(d.Resolved, updated, 0o644); err != nil {
		return fmt.Errorf("%s is unchanged: %w (a read-only file system or an immutable file? see lsattr)", d.Path, err)
	}
	d.NewSHA256 = digest(updated)
	c.Data, err = json.Marshal(d)
	return err
}

// Undo implements Fixer: it restores the original bytes, unless the file changed after
// imdsmend edited it, and sets c.Detail to what it did: the plan's diff taken back.
func (NoProxy) Undo(_ context.Context, env *Env, c *Change) error {
	var d noProxyData
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return fmt.Errorf("decode ledger record: %w", err)
	}
	current, resolved, err := proxy.ReadFileInRoot(env.Paths, d.Path, proxy.MaxConfigFile)
	if err != nil {
		return err
	}
	// First whether the original is back already: an undo that crashed after restoring,
	// an edit that never happened, or someone who restored it.
	if digest(current) == d.SHA256 {
		c.Detail = fmt.Sprintf("nothing to restore: %s already holds its original content", d.Path)
		return nil
	}
	if d.Backup == "" || d.NewSHA256 == "" {
		return fmt.Errorf("the ledger holds no backup of %s", d.Path)
	}
	if err := d.unchanged(current, resolved, d.NewSHA256, "imdsmend edited it"); err != nil {
		return fmt.Errorf("%w; not restored, so those changes stay. The original is in %s: compare and restore it by hand", err, env.Paths.File(d.Backup))
	}
	orig, err := env.Paths.ReadFile(d.Backup)
	if err != nil {
		return fmt.Errorf("read backup of %s: %w", d.Path, err)
	}
	if digest(orig) != d.SHA256 {
		return fmt.Errorf("the backup %s does not hold the original of %s (digest differs); not restored", env.Paths.File(d.Backup), d.Path)
	}
	if err := env.Paths.WriteFile(d.Resolved, orig, 0o644); err != nil {
		return fmt.Errorf("restore %s: %w", d.Path, err)
	}
	c.Detail = undoDetail(env, d, orig)
	return nil
}

// undoDetail describes a restore: the lines the edit touched, as they were after it (-)
// and as they are again (+), secrets hidden.
func undoDetail(env *Env, d noProxyData, orig []byte) string {
	head := fmt.Sprintf("restored %s from its backup, as it was before imdsmend edited it", d.Path)
	f := proxy.LoadConfig(env.Paths).File(d.Path)
	if f == nil {
		return redact.String(head)
	}
	f, err := f.WithData(orig)
	if err != nil {
		return redact.String(head)
	}
	lines := make([][2]int, len(d.Inserts))
	for i, in := range d.Inserts {
		lines[i] = physicalLine(f.Data, in.Offset)
		for _, a := range f.Assignments {
			if a.LineStart <= in.Offset && in.Offset <= a.LineEnd {
				lines[i] = [2]int{a.LineStart, a.LineEnd}
				break
			}
		}
	}
	var b strings.Builder
	b.WriteString(head)
	writeDiff(&b, f, lines, d.Inserts, true)
	return redact.String(strings.TrimSuffix(b.String(), "\n"))
}

// unchanged checks that d's file, read as data from resolved, still resolves to the same
// file and has the expected digest.
func (d noProxyData) unchanged(data []byte, resolved, want, since string) error {
	if resolved != d.Resolved {
		return fmt.Errorf("%s now leads to %s, not %s as when %s; nothing was written. Run `imdsmend plan` again", d.Path, resolved, d.Resolved, since)
	}
	if digest(data) != want {
		return fmt.Errorf("%s changed since %s; nothing was written. Run `imdsmend plan` again", d.Path, since)
	}
	return nil
}

func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// applyInserts returns data with the insertions made, in order.
func applyInserts(data []byte, inserts []insert) ([]byte, error) {
	var b bytes.Buffer
	last := 0
	for _, in := range inserts {
		if in.Offset < last || in.Offset > len(data) {
			return nil, fmt.Errorf("planned insertion at byte %d does not fit the file", in.Offset)
		}
		b.Write(data[last:in.Offset])
		b.WriteString(in.Text)
		last = in.Offset
	}
	b.Write(data[last:])
	return b.Bytes(), nil
}

// noProxyEdit is the insertions that make one file bypass IMDS, each with the line it
// lands on, for the plan's diff.
type noProxyEdit struct {
	inserts []insert
	lines   [][2]int // logical line bounds per insert
}

// add records an insertion in the logical line of a.
func (ed *noProxyEdit) add(a proxy.EnvAssignment, offset int, text string) {
	ed.addInLine([2]int{a.LineStart, a.LineEnd}, offset, text)
}

func (ed *noProxyEdit) addInLine(line [2]int, offset int, text string) {
	ed.inserts = append(ed.inserts, insert{offset, text})
	ed.lines = append(ed.lines, line)
}

// planNoProxy works out the insertions for f and checks, by parsing the result, that
// every no_proxy list in it then excludes hosts for both clients.
func planNoProxy(f *proxy.File, hosts []string) (*noProxyEdit, error) {
	ed := &noProxyEdit{}
	var err error
	if f.Format == proxy.FormatDocker {
		err = planDocker(ed, f, hosts)
	} else {
		err = planLines(ed, f, hosts)
	}
	if err != nil || len(ed.inserts) == 0 {
		return ed, err
	}
	sort.SliceStable(ed.inserts, func(i, j int) bool { return ed.inserts[i].Offset < ed.inserts[j].Offset })
	sort.SliceStable(ed.lines, func(i, j int) bool { return ed.lines[i][0] < ed.lines[j][0] })
	updated, err := applyInserts(f.Data, ed.inserts)
	if err != nil {
		return nil, err
	}
	g, err := f.WithData(updated)
	if err != nil {
		return nil, fmt.Errorf("%s: the edit would not parse (%v); add %s to no_proxy and NO_PROXY by hand", f.Path, err, strings.Join(hosts, ","))
	}
	spellings := map[string]bool{}
	for _, a := range g.Assignments {
		if !slices.Contains(proxy.NoProxyVars, a.Name) {
			continue
		}
		spellings[a.Name] = true
		if !proxy.NoProxyBypasses(a.Value, hosts) {
			return nil, fmt.Errorf("%s:%d: %s=%q would still not exclude %s for curl and Go (a blank ends curl's list); fix that line by hand",
				f.Path, a.Line, a.Name, a.Value, strings.Join(hosts, ","))
		}
	}
	if g.SetsProxy() && len(spellings) < len(proxy.NoProxyVars) {
		return nil, fmt.Errorf("%s: could not add both no_proxy and NO_PROXY; add them by hand", f.Path)
	}
	return ed, nil
}

// missingHosts returns the hosts value does not exclude for both clients.
func missingHosts(value string, hosts []string) []string {
	var out []string
	for _, h := range hosts {
		if !proxy.NoProxyBypasses(value, []string{h}) {
			out = append(out, h)
		}
	}
	return out
}

// appendText is what to write at the end of a value to add hosts: a comma first unless
// the written value is empty or already ends with one.
func appendText(written string, hosts []string) string {
	written = strings.NewReplacer(`"`, "", "'", "").Replace(written)
	if written == "" || strings.HasSuffix(written, ",") {
		return strings.Join(hosts, ",")
	}
	return "," + strings.Join(hosts, ",")
}

// planLines handles environment files, shell scripts and systemd files.
func planLines(ed *noProxyEdit, f *proxy.File, hosts []string) error {
	// 1. Every assignment of either spelling gets the hosts it lacks.
	added := map[int]string{} // assignment index → text appended to it
	last := map[string]int{}  // spelling → index of its last assignment
	for i, a := range f.Assignments {
		if a.Name == "" {
			clear(last) // a systemd reset: what came before no longer counts
			continue
		}
		if !slices.Contains(proxy.NoProxyVars, a.Name) {
			continue
		}
		last[a.Name] = i
		missing := missingHosts(a.Value, hosts)
		if len(missing) == 0 {
			continue
		}
		if a.Irregular {
			return fmt.Errorf("%s:%d: %s is written with quotes inside its name; add %s to it by hand", f.Path, a.Line, a.Name, strings.Join(missing, ","))
		}
		text := appendText(string(f.Data[a.ValueStart:a.ValueEnd]), missing)
		added[i] = text
		ed.add(a, a.ValueEnd, text)
	}
	if !f.SetsProxy() {
		return nil
	}
	// 2. A file that sets a proxy gets the spelling it lacks, after the other spelling's
	// last assignment (a copy of it) or else after its last proxy assignment.
	anchor := -1
	for i, a := range f.Assignments {
		switch {
		case a.Name == "":
			anchor = -1 // a line before a systemd reset would be reset too
		case slices.Contains(proxy.Vars, a.Name):
			anchor = i
		}
	}
	for _, name := range proxy.NoProxyVars {
		if _, ok := last[name]; ok {
			continue
		}
		other := proxy.EnvNoProxyUC
		if name == proxy.EnvNoProxyUC {
			other = proxy.EnvNoProxy
		}
		var line string
		at := f.Assignments[anchor]
		if i, ok := last[other]; ok && !f.Assignments[i].Irregular && !f.Assignments[i].Append {
			at = f.Assignments[i]
			line = directivePrefix(f, at) + copyWord(f.Data, at, name, added[i])
		} else {
			// The value the file's consumers see so far, plus the hosts.
			value := firstSet(f.Inherited, name, other)
			if i, ok := last[other]; ok {
				value = f.Assignments[i].Value
			}
			if missing := missingHosts(value, hosts); len(missing) > 0 {
				value += appendText(value, missing)
			}
			var err error
			if line, err = newAssignment(f, at, name, value); err != nil {
				return err
			}
		}
		ed.add(at, at.LineEnd, lineEnding(f.Data, at.LineEnd)+line)
	}
	return nil
}

func firstSet(env map[string]string, names ...string) string {
	for _, n := range names {
		if env[n] != "" {
			return env[n]
		}
	}
	return ""
}

// directivePrefix is what precedes an assignment word on a new line.
func directivePrefix(f *proxy.File, a proxy.EnvAssignment) string {
	switch f.Format {
	case proxy.FormatShell:
		return "export "
	case proxy.FormatSystemd:
		return a.Directive + "="
	}
	return ""
}

// copyWord is a's word with the name replaced and extra appended to the value.
func copyWord(data []byte, a proxy.EnvAssignment, name, extra string) string {
	return string(data[a.WordStart:a.NameStart]) + name + string(data[a.NameStart+len(a.Name):a.ValueEnd]) + extra + string(data[a.ValueEnd:a.WordEnd])
}

// newAssignment renders name=value as a new line in f's format, quoted so the value
// reads back unchanged. Values that would need more than simple quoting are refused.
func newAssignment(f *proxy.File, at proxy.EnvAssignment, name, value string) (string, error) {
	if strings.ContainsAny(value, "\"'\\`$#\n\r") || strings.ContainsFunc(value, func(r rune) bool { return r < ' ' }) {
		return "", fmt.Errorf("%s: the no_proxy value %q can't be written safely; add %s=%s by hand", f.Path, value, name, value)
	}
	switch f.Format {
	case proxy.FormatShell:
		return `export ` + name + `="` + value + `"`, nil
	case proxy.FormatSystemd:
		if at.Directive == "Environment" {
			value = strings.ReplaceAll(value, "%", "%%") // a specifier otherwise
		}
		return at.Directive + `="` + name + "=" + value + `"`, nil
	}
	if strings.ContainsAny(value, " \t") {
		return name + `="` + value + `"`, nil
	}
	return name + "=" + value, nil
}

// lineEnding returns the line ending that follows offset (that of the file when the line
// is the last one and has none).
func lineEnding(data []byte, offset int) string {
	switch {
	case bytes.HasPrefix(data[offset:], []byte("\r\n")):
		return "\r\n"
	case bytes.HasPrefix(data[offset:], []byte("\n")):
		return "\n"
	case bytes.Contains(data, []byte("\r\n")):
		return "\r\n"
	}
	return "\n"
}

// planDocker edits daemon.json's proxies object: the no-proxy member gets the hosts it
// lacks, or is added after the last member.
func planDocker(ed *noProxyEdit, f *proxy.File, hosts []string) error {
	dp := f.Docker
	inherited := firstSet(f.Inherited, proxy.EnvNoProxyUC, proxy.EnvNoProxy)
	var noProxy *proxy.EnvAssignment
	for i, a := range f.Assignments {
		if a.Directive == "no-proxy" {
			noProxy = &f.Assignments[i]
		}
	}
	switch {
	case noProxy != nil && noProxy.Value == "":
		// An empty no-proxy leaves dockerd the unit's list; keep that list when filling it.
		value := inherited
		value += appendText(value, missingHosts(value, hosts))
		ed.add(*noProxy, noProxy.ValueEnd, jsonStringBody(value))
	case noProxy != nil:
		if missing := missingHosts(noProxy.Value, hosts); len(missing) > 0 {
			ed.add(*noProxy, noProxy.ValueEnd, appendText(string(f.Data[noProxy.ValueStart:noProxy.ValueEnd]), missing))
		}
	case f.SetsProxy():
		value := inherited
		if missing := missingHosts(value, hosts); len(missing) > 0 {
			value += appendText(value, missing)
		}
		member := `"no-proxy"` + dp.Colon + `"` + jsonStringBody(value) + `"`
		if dp.LastValueEnd != dp.ObjectStart {
			member = "," + dp.Separator + member
		}
		ed.addInLine(physicalLine(f.Data, dp.LastValueEnd), dp.LastValueEnd, member)
	}
	return nil
}

// jsonStringBody is s encoded as a JSON string, without the quotes.
func jsonStringBody(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// describe renders the plan: a diff of the lines that change, proxy passwords hidden,
// and who picks the change up.
func (ed *noProxyEdit) describe(f *proxy.File, hosts []string, env *Env) string {
	var b strings.Builder
	lists := "no_proxy and NO_PROXY"
	if f.Format == proxy.FormatDocker {
		lists = "proxies.no-proxy"
	}
	fmt.Fprintf(&b, "add %s to %s in %s", strings.Join(hosts, ","), lists, f.Path)
	if f.Resolved != f.Path {
		fmt.Fprintf(&b, " (a link to %s)", f.Resolved)
	}
	writeDiff(&b, f, ed.lines, ed.inserts, false)
	b.WriteString(pickedUpBy(f, env))
	return redact.String(b.String())
}

// writeDiff writes a diff of the logical lines of f that inserts change, each once:
// original then edited, or with inverse (an undo) edited then original.
func writeDiff(b *strings.Builder, f *proxy.File, lines [][2]int, inserts []insert, inverse bool) {
	fmt.Fprintf(b, "\n--- %s\n+++ %s\n", f.Path, f.Path)
	done := map[[2]int]bool{}
	for _, ln := range lines {
		if done[ln] {
			continue
		}
		done[ln] = true
		before, after := renderLine(f, ln, nil), renderLine(f, ln, inserts)
		if inverse {
			before, after = after, before
		}
		fmt.Fprintf(b, "@@ line %d @@\n", lineNumber(f.Data, ln[0]))
		for _, l := range strings.Split(before, "\n") {
			b.WriteString("-" + strings.TrimSuffix(l, "\r") + "\n")
		}
		for _, l := range strings.Split(after, "\n") {
			b.WriteString("+" + strings.TrimSuffix(l, "\r") + "\n")
		}
	}
}

// renderLine is the text of the logical line ln with the inserts that fall in it made and
// every proxy value's user and password hidden.
func renderLine(f *proxy.File, ln [2]int, inserts []insert) string {
	type piece struct {
		from, to int
		text     string
	}
	var pieces []piece
	for _, a := range f.Assignments {
		if slices.Contains(proxy.Vars, a.Name) && !a.Irregular && a.ValueStart >= ln[0] && a.ValueEnd <= ln[1] {
			v := string(f.Data[a.ValueStart:a.ValueEnd])
			pieces = append(pieces, piece{a.ValueStart, a.ValueEnd, proxy.RedactURL(v)})
		}
	}
	for _, in := range inserts {
		if in.Offset >= ln[0] && in.Offset <= ln[1] {
			pieces = append(pieces, piece{in.Offset, in.Offset, in.Text})
		}
	}
	sort.SliceStable(pieces, func(i, j int) bool { return pieces[i].from < pieces[j].from })
	var b strings.Builder
	at := ln[0]
	for _, p := range pieces {
		if p.from < at {
			continue // daemon.json names one member twice (both spellings)
		}
		b.Write(f.Data[at:p.from])
		b.WriteString(p.text)
		at = p.to
	}
	b.Write(f.Data[at:ln[1]])
	return b.String()
}

// physicalLine is the line around offset, without its line ending.
func physicalLine(data []byte, offset int) [2]int {
	start := bytes.LastIndexByte(data[:offset], '\n') + 1
	end := len(data)
	if i := bytes.IndexByte(data[offset:], '\n'); i >= 0 {
		end = offset + i
	}
	return [2]int{start, end}
}

func lineNumber(data []byte, offset int) int { return bytes.Count(data[:offset], []byte("\n")) + 1 }

// pickedUpBy says which programs see the change, and what running ones need.
func pickedUpBy(f *proxy.File, env *Env) string {
	restart := "allow restart_units in the policy to let imdsmend restart it, or run"
	if env.Allow != nil && env.Allow(types.PermRestartUnits) {
		restart = "imdsmend restarts it (restart_unit) if its processes still leak; otherwise run"
	}
	switch f.Kind {
	case proxy.KindEnvironment, proxy.KindProfile:
		return "new login sessions pick this up; running shells and their children keep their environment"
	case proxy.KindManager:
		return "services started after `systemctl daemon-reload` pick this up; running services keep their environment until they restart"
	}
	return fmt.Sprintf("%s keeps its environment until it restarts: %s `systemctl daemon-reload && systemctl try-restart %s`", f.Unit, restart, f.Unit)
}

// stringList reads a list(string) attribute of a decoded remediate block, without
// duplicates.
func stringList(args cty.Value, name string) ([]string, error) {
	v := args.GetAttr(name)
	if v.IsNull() || !v.IsKnown() {
		return nil, fmt.Errorf("%s is not set", name)
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() || !e.IsKnown() {
			return nil, errors.New(name + " holds a null or unknown element")
		}
		if s := e.AsString(); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}
