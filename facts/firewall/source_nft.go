package firewall

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/imdsmend/imdsmend/internal/paths"
	"golang.org/x/sys/unix"
)

// nftables.service loads /etc/nftables.conf (RHEL: /etc/sysconfig/nftables.conf) and its
// includes at boot. A live rule is found there by loading the file, includes inlined, into
// a network namespace of its own and reading it back as nft prints it: the file says
// `tcp dport http counter`, nft `tcp dport 80 counter`, and only nft knows every spelling.
// The file's own structure (tables, chains, rule statements) gives each loaded rule its
// line: the k-th rule nft holds in a chain is the k-th rule statement of that chain.

// confLine is where a line of the inlined text comes from.
type confLine struct {
	file string
	line int
}

// nftConf is an nftables.conf, includes inlined.
type nftConf struct {
	file   string
	text   []byte
	origin []confLine // per line of text
	// rules holds, per "FAMILY TABLE\x00CHAIN\x00SPEC", the sources of matching rules in
	// chain order; used counts those already given to live rules.
	rules map[string][]Source
	used  map[string]int
	err   error
}

// maxIncludeDepth bounds nested includes (nft itself allows 16).
const maxIncludeDepth = 16

// inlineNftConf reads file and the files it includes, through p.
func inlineNftConf(p paths.Paths, file string) (*nftConf, error) {
	c := &nftConf{file: file}
	var buf bytes.Buffer
	var add func(file string, depth int) error
	add = func(file string, depth int) error {
		if depth > maxIncludeDepth {
			return fmt.Errorf("%s: includes nest deeper than %d", file, maxIncludeDepth)
		}
		data, err := p.ReadFile(file)
		if err != nil {
			return err
		}
		for n, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			if inc, ok := includeTarget(line); ok {
				files, err := globInRoot(p, inc)
				if err != nil {
					return fmt.Errorf("%s:%d: %w", file, n+1, err)
				}
				for _, f := range files {
					if err := add(f, depth+1); err != nil {
						return err
					}
				}
				continue
			}
			buf.WriteString(line)
			buf.WriteByte('\n')
			c.origin = append(c.origin, confLine{file, n + 1})
		}
		return nil
	}
	if err := add(file, 0); err != nil {
		return nil, err
	}
	c.text = buf.Bytes()
	return c, nil
}

// includeTarget reads `include "PATH"` (a line of its own, as nftables.conf writes it).
func includeTarget(line string) (string, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "include")
	if !ok {
		return "", false
	}
	rest = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), ";"))
	if len(rest) < 2 || rest[0] != '"' || rest[len(rest)-1] != '"' {
		return "", false
	}
	inc := rest[1 : len(rest)-1]
	if !path.IsAbs(inc) {
		inc = path.Join(paths.NftIncludeDir, inc)
	}
	return inc, true
}

// globInRoot expands pattern (as on the system) inside p's root, in lexical order as nft
// does. A pattern without wildcards must exist.
func globInRoot(p paths.Paths, pattern string) ([]string, error) {
	if !strings.ContainsAny(pattern, "*?[") {
		return []string{pattern}, nil
	}
	matches, err := filepath.Glob(p.File(pattern))
	if err != nil {
		return nil, err
	}
	out := make([]string, len(matches))
	for i, m := range matches {
		out[i] = p.System(m)
	}
	slices.Sort(out)
	return out, nil
}

// nftConfRule is a rule statement, or a chain policy, of the inlined text.
type nftConfRule struct {
	table, chain string // table as "FAMILY NAME"
	line         int    // 0-based line of the inlined text
	insert       bool
	policy       string // "DROP" or "ACCEPT" for a chain's policy, else ""
}

// nftFamilyNames are the families nft's language names.
var nftFamilyNames = []string{"ip", "ip6", "inet", "arp", "bridge", "netdev"}

// parseNftConf reads the structure of nft's configuration language: tables, chains, their
// policies and rule statements (in blocks or as `add rule` commands). It does not judge
// rules: nft does that when the text is loaded.
func parseNftConf(text []byte) []nftConfRule {
	type block struct{ kind, table, chain string }
	stack := []block{{kind: "top"}}
	var rules []nftConfRule
	var stmt []string
	stmtLine, depth := -1, 0
	flush := func() {
		defer func() { stmt, stmtLine = nil, -1 }()
		if len(stmt) == 0 {
			return
		}
		top := stack[len(stack)-1]
		switch top.kind {
		case "chain":
			switch stmt[0] {
			case "policy":
				if len(stmt) > 1 {
					rules = append(rules, nftConfRule{table: top.table, chain: top.chain, line: stmtLine, policy: strings.ToUpper(stmt[1])})
				}
			case "type", "comment", "devices", "device", "priority":
			default:
				rules = append(rules, nftConfRule{table: top.table, chain: top.chain, line: stmtLine})
			}
		case "top":
			w := stmt
			if w[0] == "add" || w[0] == "insert" || w[0] == "create" {
				w = w[1:]
			}
			switch {
			case len(stmt) >= 2 && stmt[0] == "flush" && stmt[1] == "ruleset":
				rules = nil
			case len(w) >= 3 && w[0] == "rule":
				fam := "ip"
				if slices.Contains(nftFamilyNames, w[1]) {
					fam, w = w[1], w[1:]
				}
				if len(w) >= 3 {
					rules = append(rules, nftConfRule{table: fam + " " + w[1], chain: w[2], line: stmtLine, insert: stmt[0] == "insert"})
				}
			}
		}
	}
	open := func() {
		top := stack[len(stack)-1]
		b := block{kind: "other"}
		w := stmt
		if len(w) > 0 && (w[0] == "add" || w[0] == "create") {
			w = w[1:]
		}
		fam := func(w []string) ([]string, string) {
			if len(w) > 1 && slices.Contains(nftFamilyNames, w[1]) {
				return w[1:], w[1]
			}
			return w, "ip"
		}
		switch {
		case top.kind == "top" && len(w) >= 2 && w[0] == "table":
			w, f := fam(w)
			b = block{kind: "table", table: f + " " + w[1]}
		case top.kind == "top" && len(w) >= 3 && w[0] == "chain":
			w, f := fam(w)
			if len(w) >= 3 {
				b = block{kind: "chain", table: f + " " + w[1], chain: w[2]}
			}
		case top.kind == "table" && len(w) >= 2 && w[0] == "chain":
			b = block{kind: "chain", table: top.table, chain: w[1]}
		}
		stack = append(stack, b)
		stmt, stmtLine = nil, -1
	}
	for _, t := range nftTokens(text) {
		switch {
		case t.text == "{" && (depth > 0 || stack[len(stack)-1].kind == "chain" && len(stmt) > 0):
			// An anonymous set or map inside a rule.
			depth++
			stmt = append(stmt, t.text)
		case t.text == "{":
			open()
		case t.text == "}" && depth > 0:
			depth--
			stmt = append(stmt, t.text)
		case t.text == "}":
			flush()
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
		case (t.text == ";" || t.text == "\n") && depth == 0:
			flush()
		case t.text == ";" || t.text == "\n":
		default:
			if stmtLine < 0 {
				stmtLine = t.line
			}
			stmt = append(stmt, t.text)
		}
	}
	flush()
	return orderNftConf(rules)
}

// orderNftConf puts `insert rule` statements before the chain's earlier rules.
func orderNftConf(rules []nftConfRule) []nftConfRule {
	out := make([]nftConfRule, 0, len(rules))
	for _, r := range rules {
		at := len(out)
		if r.insert {
			for i, o := range out {
				if o.table == r.table && o.chain == r.chain && o.policy == "" {
					at = i
					break
				}
			}
		}
		out = slices.Insert(out, at, r)
	}
	return out
}

type nftToken struct {
	text string
	line int
}

// nftTokens splits nft's language into words, quoted strings, braces, semicolons and
// newlines; comments are dropped and a backslash at a line's end joins the next line.
func nftTokens(text []byte) []nftToken {
	var toks []nftToken
	line := 0
	s := string(text)
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && s[i+1] == '\n':
			i += 2
			line++
		case c == '\n':
			toks = append(toks, nftToken{"\n", line})
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '{' || c == '}' || c == ';':
			toks = append(toks, nftToken{string(c), line})
			i++
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' && s[j] != '\n' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(s))
			toks = append(toks, nftToken{s[i:j], line})
			i = j
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n{};#\"", rune(s[j])) {
				j++
			}
			toks = append(toks, nftToken{s[i:j], line})
			i = j
		}
	}
	return toks
}

// nftLoadTimeout bounds loading a configuration into a scratch namespace.
const nftLoadTimeout = 5 * time.Second

// loadNftScratch loads text into nftables of a new, empty network namespace and returns
// `nft -j list ruleset` there. The namespace lives only as long as this thread, which is
// never handed back to the Go scheduler: it ends with the goroutine, and the namespace
// with it. Nothing of the host's ruleset is touched.
func loadNftScratch(ctx context.Context, text []byte) ([]byte, error) {
	nft, err := exec.LookPath(paths.Nft)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, nftLoadTimeout)
	defer cancel()
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- result{nil, fmt.Errorf("a scratch network namespace to load nftables.conf in: %w", err)}
			return
		}
		load := exec.CommandContext(ctx, nft, "-f", "-")
		load.Stdin = bytes.NewReader(text)
		var errb bytes.Buffer
		load.Stderr = &errb
		if err := load.Run(); err != nil {
			msg := strings.TrimSpace(errb.String())
			if len(msg) > 300 {
				msg = msg[:300] + "…"
			}
			done <- result{nil, fmt.Errorf("nft could not load it: %w: %s", err, msg)}
			return
		}
		out, err := exec.CommandContext(ctx, nft, "-j", "list", "ruleset").Output()
		done <- result{out, err}
	}()
	r := <-done
	return r.out, r.err
}

// readNftConf finds the first nftables.conf under p, inlines it, loads it in a scratch
// namespace and indexes its rules by table, chain and spec.
func readNftConf(ctx context.Context, p paths.Paths) *nftConf {
	for _, f := range paths.NftablesConfs {
		if _, err := p.ReadFile(f); err != nil {
			continue
		}
		c, err := inlineNftConf(p, f)
		if err != nil {
			return &nftConf{file: f, err: err}
		}
		out, err := loadNftScratch(ctx, c.text)
		if err != nil {
			c.err = err
			return c
		}
		c.err = c.index(out)
		return c
	}
	return nil
}

// index pairs the rules nft loaded with the rule statements of the text, chain by chain.
// A chain whose counts differ (a statement the parser misread) gets no lines.
func (c *nftConf) index(listed []byte) error {
	var doc struct {
		Nftables []struct {
			Rule *nftRuleJSON `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(listed, &doc); err != nil {
		return fmt.Errorf("read nft's listing of the loaded file: %w", err)
	}
	loaded := map[string][]string{} // "FAMILY TABLE\x00CHAIN" -> specs in order
	for _, o := range doc.Nftables {
		if r := o.Rule; r != nil {
			k := r.Family + " " + r.Table + "\x00" + r.Chain
			loaded[k] = append(loaded[k], parseNftRule(r.Expr, r.Comment, nil, nil).rule.spec)
		}
	}
	stmts := map[string][]nftConfRule{}
	c.rules, c.used = map[string][]Source{}, map[string]int{}
	for _, r := range parseNftConf(c.text) {
		k := r.table + "\x00" + r.chain
		if r.policy != "" {
			c.add(k+"\x00-P "+r.chain+" "+r.policy, r.line)
			continue
		}
		stmts[k] = append(stmts[k], r)
	}
	var mismatched []string
	for k, specs := range loaded {
		if len(stmts[k]) != len(specs) {
			mismatched = append(mismatched, strings.ReplaceAll(k, "\x00", " "))
			continue
		}
		for i, spec := range specs {
			c.add(k+"\x00"+spec, stmts[k][i].line)
		}
	}
	if len(mismatched) > 0 {
		slices.Sort(mismatched)
		return fmt.Errorf("the rule statements of chains %s could not be paired with the rules nft loaded", strings.Join(mismatched, ", "))
	}
	return nil
}

func (c *nftConf) add(key string, line int) {
	o := c.origin[line]
	c.rules[key] = append(c.rules[key], Source{FrontEnd: FrontEndNftables, File: o.file, Line: o.line})
}

// findNft gives a native nft rule its source: firewalld's tables are firewalld's, others
// are looked up in nftables.conf.
func (s *sourceIndex) findNft(r *Rule) Source {
	if _, name, _ := strings.Cut(r.Table, " "); name == "firewalld" {
		return Source{FrontEnd: FrontEndFirewalld}
	}
	if s.nft == nil {
		s.nft = readNftConf(s.ctx, s.p)
		if s.nft == nil {
			s.nft = &nftConf{err: errors.New("no nftables.conf")}
		}
	}
	// An inet rule is reported once per family: each family counts its own copies.
	key := r.Table + "\x00" + r.Chain + "\x00" + r.Spec
	if srcs := s.nft.rules[key]; s.nft.used[r.Family+key] < len(srcs) {
		s.nft.used[r.Family+key]++
		return srcs[s.nft.used[r.Family+key]-1]
	}
	return Source{FrontEnd: FrontEndLive}
}

// NftSingleRuleLine reports whether line of nftables.conf is one rule statement and
// nothing else (no brace, no second statement), so cutting the line cuts just that rule.
func NftSingleRuleLine(line string) bool {
	toks := nftTokens([]byte(line))
	words := 0
	for i, t := range toks {
		switch t.text {
		case "{", "}":
			return false
		case ";":
			if i != len(toks)-1 && toks[i+1].text != "\n" {
				return false
			}
		case "\n":
		default:
			words++
		}
	}
	if words == 0 {
		return false
	}
	first := toks[0].text
	return !slices.Contains([]string{"policy", "type", "table", "chain", "include", "define", "flush", "add", "insert", "set", "map"}, first)
}

// NftConfRuleLines lists the 0-based lines of the rule statements of every chain named
// chain in an nftables.conf text (includes not followed).
func NftConfRuleLines(data []byte, chain string) []int {
	var lines []int
	for _, r := range parseNftConf(data) {
		if r.chain == chain && r.policy == "" {
			lines = append(lines, r.line)
		}
	}
	return lines
}
