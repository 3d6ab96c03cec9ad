package rules

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Source is one policy file's name and bytes.
type Source struct {
	Name string
	Data []byte
}

// LoadOptions says where the policy comes from.
type LoadOptions struct {
	// MainFile is the main policy file; drop-ins come from policy.d/ beside it.
	MainFile string
	// Builtin replaces MainFile when it is absent and Explicit is false.
	Builtin []byte
	// Explicit is set when the user named MainFile, which then must exist.
	Explicit bool
	Kinds    Kinds
	// Open opens a policy file for reading; nil is os.Open. Under --root it opens the file
	// inside the root, so a link in the tree cannot make the run read a host file.
	Open func(path string) (*os.File, error)
	// Schema is the facts the rules read; nil is the instance's (facts.Facts).
	Schema *Schema
	// DropInDir names the directory of drop-ins beside MainFile; "" is policy.d.
	DropInDir string
	// BuiltinName names Builtin in diagnostics; "" is BuiltinName.
	BuiltinName string
}

// BuiltinName is the file name diagnostics use for the embedded default policy.
const BuiltinName = "<built-in>/policy.hcl"

// DropInDir is the directory of drop-ins beside the main policy file.
const DropInDir = "policy.d"

// maxPolicySize bounds each policy file: a policy is a page of rules, and the bound keeps
// a stray huge file from costing memory and time.
const maxPolicySize = 1 << 20

// Load reads the main policy and its drop-ins, refusing files that anyone but root could
// have written (StrictModes), then parses and validates them together, and refuses a
// policy without rules. The policy may only be evaluated when the diagnostics have no
// errors; they are all reported at once.
func Load(opts LoadOptions) (*Policy, hcl.Diagnostics) {
	sources, diags := readSources(opts)
	if diags.HasErrors() {
		return &Policy{Settings: defaultSettings(), Files: map[string]*hcl.File{}, schema: orHost(opts.Schema)}, diags
	}
	p, diags := ParseSchema(sources, opts.Kinds, opts.Schema)
	if !diags.HasErrors() {
		diags = append(diags, checkSomeRule(p, sources)...)
	}
	return p, diags
}

// dropInFiles lists the drop-in files of the main policy file in load order: *.hcl in policy.d/
// beside it, in lexical order, without *_test.hcl (policy tests) and hidden files.
func dropInFiles(mainFile, dropInDir string) ([]string, error) {
	dir := filepath.Join(filepath.Dir(mainFile), dropInDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read drop-in directory %s: %w", dir, err)
	}
	var files []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".hcl") || strings.HasSuffix(n, "_test.hcl") {
			continue
		}
		files = append(files, filepath.Join(dir, n))
	}
	slices.Sort(files)
	return files, nil
}

func readSources(opts LoadOptions) ([]Source, hcl.Diagnostics) {
	var (
		sources []Source
		diags   hcl.Diagnostics
	)
	fail := func(summary string, err error) {
		diags = append(diags, errorf(nil, summary, "%s", err))
	}
	dropInDir := cmp.Or(opts.DropInDir, DropInDir)
	// Whoever can write a directory can replace the files in it.
	for _, dir := range []string{filepath.Dir(opts.MainFile), filepath.Join(filepath.Dir(opts.MainFile), dropInDir)} {
		if err := checkPolicyDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			fail("Unsafe policy directory", err)
		}
	}
	data, err := readPolicyFile(opts.Open, opts.MainFile)
	switch {
	case err == nil:
		sources = append(sources, Source{Name: opts.MainFile, Data: data})
	case errors.Is(err, fs.ErrNotExist) && !opts.Explicit && opts.Builtin != nil:
		sources = append(sources, Source{Name: cmp.Or(opts.BuiltinName, BuiltinName), Data: opts.Builtin})
	case errors.Is(err, errUnsafe):
		fail("Unsafe policy file", err)
	default:
		fail("Cannot read policy", err)
	}
	dropIns, err := dropInFiles(opts.MainFile, dropInDir)
	if err != nil {
		fail("Cannot read policy", err)
	}
	for _, p := range dropIns {
		data, err := readPolicyFile(opts.Open, p)
		switch {
		case errors.Is(err, errUnsafe):
			fail("Unsafe policy file", err)
		case err != nil:
			fail("Cannot read policy", err)
		default:
			sources = append(sources, Source{Name: p, Data: data})
		}
	}
	return sources, diags
}

// readPolicyFile reads a policy file after checking, on the open file, that only root
// could have written it.
func readPolicyFile(open func(string) (*os.File, error), path string) ([]byte, error) {
	if open == nil {
		open = os.Open
	}
	f, err := open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read policy %s: not a regular file", path)
	}
	if err := checkOwnership(path, fi); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", path, err)
	}
	if len(data) > maxPolicySize {
		return nil, fmt.Errorf("read policy %s: larger than %d KiB; a policy this large is not a policy", path, maxPolicySize>>10)
	}
	return data, nil
}

// Limits that keep HCL's recursive-descent parser far from exhausting the stack, which
// would end the process rather than panic. No sensible policy comes near them.
const (
	maxNesting   = 1000 // brackets, braces, parentheses, quotes and templates inside each other
	maxOperators = 1000 // !, - and ? per file: chains of them nest too
)

// checkNesting refuses a file that is too large, or that nests deeper than the parser
// can safely follow, judged from its tokens (the lexer does not recurse).
func checkNesting(src Source) *hcl.Diagnostic {
	if len(src.Data) > maxPolicySize {
		return errorf(nil, "Policy too large", "%s is larger than %d KiB; a policy this large is not a policy.", src.Name, maxPolicySize>>10)
	}
	// Every opening token holds one of these bytes, so a file with few of them cannot nest
	// deeply; lexing, which costs as much as parsing, is then skipped.
	if countBytes(src.Data, `([{"<`) <= maxNesting && countBytes(src.Data, "!-?") <= maxOperators {
		return nil
	}
	tokens, _ := hclsyntax.LexConfig(src.Data, src.Name, hcl.InitialPos)
	depth, ops := 0, 0
	for _, tok := range tokens {
		switch tok.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen, hclsyntax.TokenOQuote,
			hclsyntax.TokenOHeredoc, hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			if depth++; depth > maxNesting {
				return errorf(tok.Range.Ptr(), "Nested too deeply", "Expressions and blocks may nest at most %d levels deep.", maxNesting)
			}
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenCQuote,
			hclsyntax.TokenCHeredoc, hclsyntax.TokenTemplateSeqEnd:
			depth--
		case hclsyntax.TokenBang, hclsyntax.TokenMinus, hclsyntax.TokenQuestion:
			if ops++; ops > maxOperators {
				return errorf(tok.Range.Ptr(), "Too many operators", "A policy file may use at most %d of the operators !, - and ?.", maxOperators)
			}
		}
	}
	return nil
}

func countBytes(data []byte, set string) int {
	n := 0
	for i := range len(set) {
		n += bytes.Count(data, []byte{set[i]})
	}
	return n
}

// checkLoops requires every for expression to iterate over a fact — a traversal such as
// facts.firewall.rules or r.sources — not a computed collection. Iterations are then
// bounded by what the probes found, and a small file cannot describe nested loops over
// huge computed lists that would never finish.
func checkLoops(file *hcl.File) hcl.Diagnostics {
	body, ok := file.Body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	var diags hcl.Diagnostics
	hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
		if f, ok := n.(*hclsyntax.ForExpr); ok {
			if _, ok := f.CollExpr.(*hclsyntax.ScopeTraversalExpr); !ok {
				diags = append(diags, errorf(f.CollExpr.Range().Ptr(), "Invalid for expression",
					"A for expression iterates over facts, such as facts.firewall.rules or an attribute of an outer loop's element, not over a computed collection."))
			}
		}
		return nil
	})
	return diags
}

// parseFile parses one file of a policy or of its tests. It returns the file when HCL could
// parse it, for diagnostics with source lines, and ok when its blocks may be decoded: it
// nests no deeper than the parser can follow, parsed without errors (a file that does not
// parse would only add confusing errors) and loops only over facts (evaluating it might
// not end otherwise).
func parseFile(parser *hclparse.Parser, src Source) (file *hcl.File, ok bool, diags hcl.Diagnostics) {
	if d := checkNesting(src); d != nil {
		return nil, false, hcl.Diagnostics{d}
	}
	file, diags = parser.ParseHCL(src.Data, src.Name)
	if file == nil || diags.HasErrors() {
		return file, false, diags
	}
	if d := checkLoops(file); d.HasErrors() {
		return file, false, append(diags, d...)
	}
	return file, true, diags
}

var policySchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "settings"},
		{Type: "rule", LabelNames: []string{"name"}},
	},
}

// Parse parses sources in order — the main policy first, then drop-ins — into one policy.
// Settings merge attribute by attribute; a rule block with `when` defines (or replaces) the
// rule of its name, a rule block without `when` in a drop-in modifies the attributes it sets.
func Parse(sources []Source, kinds Kinds) (*Policy, hcl.Diagnostics) {
	return ParseSchema(sources, kinds, nil)
}

// ParseSchema is Parse for a policy whose rules read schema's facts (nil: the instance's).
func ParseSchema(sources []Source, kinds Kinds, schema *Schema) (*Policy, hcl.Diagnostics) {
	parser := hclparse.NewParser()
	p := &Policy{Settings: defaultSettings(), Files: map[string]*hcl.File{}, schema: orHost(schema)}
	settings := newSettingsMerger(&p.Settings)
	checker := newChecker(kinds, p.schema.Type)
	var diags hcl.Diagnostics
	for i, src := range sources {
		file, ok, d := parseFile(parser, src)
		diags = append(diags, d...)
		if file != nil {
			p.Files[src.Name] = file
			p.Sources = append(p.Sources, src.Name)
		}
		if !ok {
			continue
		}
		c, d := content(file.Body, policySchema)
		diags = append(diags, d...)
		inFile := map[string]hcl.Range{}
		for _, block := range c.Blocks {
			switch block.Type {
			case "settings":
				diags = append(diags, settings.merge(block)...)
			case "rule":
				name := block.Labels[0]
				if prev, dup := inFile[name]; dup {
					diags = append(diags, errorf(block.LabelRanges[0].Ptr(), "Duplicate rule",
						"Rule %q is already defined in this file at %s. Rename one, or merge them; to replace a rule, use a drop-in in %s/.", name, prev, DropInDir))
					continue
				}
				inFile[name] = block.DefRange
				diags = append(diags, p.addRule(block, i > 0, checker)...)
			}
		}
	}
	if !diags.HasErrors() {
		diags = append(diags, settings.check()...)
	}
	return p, diags
}

// checkSomeRule refuses a policy without rules: it would check nothing and call every
// instance healthy, a silence an operator would take for good news. Rules that exist but
// are all turned off earn a warning: that may be meant, for a while.
func checkSomeRule(p *Policy, sources []Source) hcl.Diagnostics {
	var main *hcl.Range
	if len(sources) > 0 {
		main = &hcl.Range{Filename: sources[0].Name, Start: hcl.InitialPos, End: hcl.InitialPos}
	}
	switch {
	case len(p.Rules) == 0:
		return hcl.Diagnostics{errorf(main, "No rules",
			"The policy defines no rules, so imdsmend would check nothing and report every instance healthy. Define rules in the main file or in a drop-in in %s/, or remove the main file at the default path to use the built-in policy.", DropInDir)}
	case !slices.ContainsFunc(p.Rules, func(r *Rule) bool { return r.Enabled }):
		return hcl.Diagnostics{{Severity: hcl.DiagWarning, Summary: "All rules disabled", Subject: main,
			Detail: "Every rule has enabled = false, so imdsmend checks nothing and reports every instance healthy."}}
	}
	return nil
}

// addRule decodes a rule block and adds it to the policy: a full definition (with `when`)
// replaces an earlier rule of its name in place; in a drop-in, a block without `when`
// modifies the earlier rule.
func (p *Policy) addRule(block *hcl.Block, dropIn bool, checker *checker) hcl.Diagnostics {
	decl, diags := checker.decodeRule(block)
	if decl == nil {
		return diags
	}
	i := slices.IndexFunc(p.Rules, func(r *Rule) bool { return r.Name == decl.rule.Name })
	switch {
	case decl.full && i >= 0:
		p.Rules[i] = decl.rule
	case decl.full:
		p.Rules = append(p.Rules, decl.rule)
	case diags.HasErrors():
		// A block whose arguments are misspelt is neither a definition nor a modification.
	case !dropIn:
		diags = append(diags, decl.missing("when")...)
	case i < 0:
		diags = append(diags, errorf(block.LabelRanges[0].Ptr(), "No rule to modify",
			"A rule block without when modifies a rule loaded before this file, but no rule %q is defined before it. To add a new rule, give it when, severity and summary.", decl.rule.Name))
	default:
		decl.patch(p.Rules[i])
	}
	return diags
}
