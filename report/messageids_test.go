package report

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// constants returns the string constants declared in a file of this package, by name.
func constants(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					out[name.Name], _ = strconv.Unquote(lit.Value)
				}
			}
		}
	}
	return out
}

var id128 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestMessageIDsListed(t *testing.T) {
	seen := map[string]string{}
	for name, id := range constants(t, "messageids.go") {
		if !id128.MatchString(id) {
			t.Errorf("%s = %q is not a 128-bit ID in lower-case hex", name, id)
		}
		if other, dup := seen[id]; dup {
			t.Errorf("%s and %s share MESSAGE_ID %s", name, other, id)
		}
		seen[id] = name
		if _, ok := MessageIDs[id]; !ok {
			t.Errorf("%s is missing from MessageIDs", name)
		}
	}
	if len(seen) != len(MessageIDs) {
		t.Errorf("MessageIDs has %d entries, messageids.go declares %d constants", len(MessageIDs), len(seen))
	}
}

// catalogEntry is one "-- ID" section of a journald catalog file.
type catalogEntry struct {
	headers map[string][]string
	body    string
}

// parseCatalog reads the catalog format `journalctl --update-catalog` accepts.
func parseCatalog(t *testing.T, path string) map[string]catalogEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]catalogEntry{}
	var id string
	var cur *catalogEntry
	inBody := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "-- "):
			if cur != nil {
				out[id] = *cur
			}
			id = strings.TrimPrefix(line, "-- ")
			if _, dup := out[id]; dup {
				t.Errorf("%s:%d: second entry for %s", path, n, id)
			}
			cur, inBody = &catalogEntry{headers: map[string][]string{}}, false
		case cur == nil:
			if line != "" && !strings.HasPrefix(line, "#") {
				t.Errorf("%s:%d: text before the first entry: %q", path, n, line)
			}
		case !inBody && line == "":
			inBody = true
		case !inBody:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				t.Errorf("%s:%d: header without a colon: %q", path, n, line)
			}
			cur.headers[k] = append(cur.headers[k], strings.TrimSpace(v))
		default:
			cur.body += line + "\n"
		}
	}
	if cur != nil {
		out[id] = *cur
	}
	return out
}

func TestCatalogMatchesMessageIDs(t *testing.T) {
	const path = "../packaging/imdsmend.catalog"
	catalog := parseCatalog(t, path)
	for id, name := range MessageIDs {
		e, ok := catalog[id]
		if !ok {
			t.Errorf("%s: no entry for %s (%s)", path, id, name)
			continue
		}
		for _, h := range []string{"Subject", "Defined-By", "Documentation"} {
			if len(e.headers[h]) == 0 {
				t.Errorf("%s: entry %s (%s) has no %s header", path, id, name, h)
			}
		}
		for _, part := range []string{"Why it matters:", "What to do:"} {
			if !strings.Contains(e.body, part) {
				t.Errorf("%s: entry %s (%s) does not say %q", path, id, name, part)
			}
		}
	}
	for id := range catalog {
		if _, ok := MessageIDs[id]; !ok {
			t.Errorf("%s: entry %s has no MESSAGE_ID in report/messageids.go", path, id)
		}
	}
	// Every @FIELD@ the catalog substitutes must be a field imdsmend sends.
	fields := constants(t, "fields.go")
	known := map[string]bool{}
	for _, v := range fields {
		known[v] = true
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, m := range regexp.MustCompile(`@([A-Z0-9_]+)@`).FindAllStringSubmatch(line, -1) {
			if !known[m[1]] {
				t.Errorf("%s substitutes @%s@, which is not a field in report/fields.go", path, m[1])
			}
		}
	}
}

func TestFieldNamesValid(t *testing.T) {
	fields := constants(t, "fields.go")
	if len(fields) < 7 {
		t.Fatalf("found only %d field constants in fields.go", len(fields))
	}
	for name, field := range fields {
		if name == "SyslogIdentifier" {
			continue
		}
		if err := validFieldName(field); err != nil {
			t.Errorf("%s = %q: %v", name, field, err)
		}
	}
	for _, want := range []string{"IMDSMEND_RULE", "IMDSMEND_SEVERITY", "IMDSMEND_ACTION", "IMDSMEND_ACTION_ID", "IMDSMEND_TARGET", "IMDSMEND_STATUS", "IMDSMEND_RUN_ID"} {
		if !slices.Contains(slices.Collect(maps.Values(fields)), want) {
			t.Errorf("contract field %s (docs/contract.md) is not declared", want)
		}
	}
}

func TestValidFieldName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"IMDSMEND_RULE", true},
		{"A1_B", true},
		{"", false},
		{"_PID", false},
		{"1ABC", false},
		{"imdsmend_rule", false},
		{"IMDSMEND-RULE", false},
		{"IMDSMEND RULE", false},
		{strings.Repeat("A", 64), true},
		{strings.Repeat("A", 65), false},
	}
	for _, tt := range tests {
		if err := validFieldName(tt.name); (err == nil) != tt.ok {
			t.Errorf("validFieldName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
