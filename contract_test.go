package imdsmend

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/report"
)

// docs/contract.md is the whole public contract and the code may only add to it, so every
// name a consumer can see in the code must be written down there. These tests find the
// names in the code itself (constants, struct tags, the CLI's own help), not in a list kept
// beside the docs that could drift as well.

var journalField = regexp.MustCompile(`^IMDSMEND_[A-Z0-9_]+$`)

// TestContractJournalFields: every IMDSMEND_* field the report package declares, and every
// MESSAGE_ID, is in the contract.
func TestContractJournalFields(t *testing.T) {
	doc := readDoc(t, "docs/contract.md")
	fields := reportFieldConstants(t)
	if len(fields) < 7 {
		t.Fatalf("found only %d IMDSMEND_* constants in report/; is the pattern still right?", len(fields))
	}
	for _, f := range fields {
		if !strings.Contains(doc, "`"+f+"`") {
			t.Errorf("docs/contract.md does not list the journal field %s", f)
		}
	}
	for id, kind := range report.MessageIDs {
		if !strings.Contains(doc, "`"+id+"`") {
			t.Errorf("docs/contract.md does not list the MESSAGE_ID %s (%s)", id, kind)
		}
	}
}

// reportFieldConstants returns the values of the report package's string constants that
// name a journal field.
func reportFieldConstants(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("report/*.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				for _, v := range s.(*ast.ValueSpec).Values {
					lit, ok := v.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					if s, err := strconv.Unquote(lit.Value); err == nil && journalField.MatchString(s) {
						out = append(out, s)
					}
				}
			}
		}
	}
	return out
}

// TestContractReportFields: every field of the JSON report, by its path (`imds.class`,
// `findings[].rule`), is in the contract.
func TestContractReportFields(t *testing.T) {
	doc := readDoc(t, "docs/contract.md")
	paths := jsonPaths(reflect.TypeFor[report.Report](), "")
	if len(paths) < 20 {
		t.Fatalf("found only %d report fields: %v", len(paths), paths)
	}
	for _, p := range paths {
		if !strings.Contains(doc, "`"+p+"`") {
			t.Errorf("docs/contract.md does not describe the report field %s", p)
		}
	}
}

var rawJSON = reflect.TypeFor[json.RawMessage]()

// jsonPaths lists the JSON names of t's fields and, below structs and lists of structs,
// their fields' as parent.name and parent[].name. Free-form values (json.RawMessage) are
// leaves.
func jsonPaths(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		path := prefix + name
		out = append(out, path)
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft == rawJSON:
		case ft.Kind() == reflect.Struct:
			out = append(out, jsonPaths(ft, path+".")...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, jsonPaths(ft.Elem(), path+"[].")...)
		}
	}
	return out
}

// TestContractCLI: every subcommand and every flag the built binary's help shows is in the
// contract.
func TestContractCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "imdsmend")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/imdsmend").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	doc := readDoc(t, "docs/contract.md")
	root := helpSections(t, bin)
	commands := root["Available Commands"]
	if len(commands) < 9 {
		t.Fatalf("found only %d subcommands in the help: %v", len(commands), commands)
	}
	flags := append(root["Flags"], root["Global Flags"]...)
	for _, c := range commands {
		if !strings.Contains(doc, "imdsmend "+c) {
			t.Errorf("docs/contract.md does not list the command `imdsmend %s`", c)
		}
		flags = append(flags, helpSections(t, bin, c)["Flags"]...)
	}
	if len(flags) < 8 {
		t.Fatalf("found only %d flags in the help: %v", len(flags), flags)
	}
	for _, f := range flags {
		if !regexp.MustCompile(`(^|[^-\w])` + regexp.QuoteMeta(f) + `([^-\w]|$)`).MatchString(doc) {
			t.Errorf("docs/contract.md does not list the flag %s", f)
		}
	}
}

var (
	helpHeading = regexp.MustCompile(`^([A-Z][A-Za-z ]+):$`)
	helpCommand = regexp.MustCompile(`^  ([a-z][a-z-]*)\s`)
	helpFlag    = regexp.MustCompile(`^\s+(?:-\w, )?(--[a-z][a-z-]*)`)
)

// helpSections runs `imdsmend ARGS... --help` and returns, by heading, the commands
// ("Available Commands") or long flags ("Flags", "Global Flags") cobra lists.
func helpSections(t *testing.T, bin string, args ...string) map[string][]string {
	t.Helper()
	cmd := exec.Command(bin, append(args, "--help")...)
	// --help probes nothing, but never let a test's imdsmend reach IMDS from the host.
	cmd.Env = append(os.Environ(), "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("imdsmend %s --help: %v", strings.Join(args, " "), err)
	}
	sections := map[string][]string{}
	heading := ""
	for _, line := range strings.Split(string(out), "\n") {
		if m := helpHeading.FindStringSubmatch(line); m != nil {
			heading = m[1]
			continue
		}
		pattern := helpFlag
		if heading == "Available Commands" {
			pattern = helpCommand
		}
		if m := pattern.FindStringSubmatch(line); m != nil && heading != "" {
			sections[heading] = append(sections[heading], m[1])
		}
	}
	return sections
}
