package imdsmend

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hashicorp/hcl/v2"
	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/fleet"
	"github.com/imdsmend/imdsmend/remediate"
	"github.com/imdsmend/imdsmend/rules"
)

// The docs are checked against the code, so that they cannot drift from it again: every HCL
// example loads, every count they state is the code's, every error message they quote is
// the one printed.

// fragmentMarker, on the line before a ```hcl block, says the block is not a policy file
// but rule attributes, one a line (as in a list of `when = …` examples).
const fragmentMarker = "<!-- fragment: rule attributes -->"

// docExample is one ```hcl block of a Markdown file.
type docExample struct {
	where    string // file:line of the opening fence
	text     string
	fragment bool
}

var hclFence = regexp.MustCompile("(?m)^```hcl\n((?s:.*?))^```")

// docExamples returns the ```hcl blocks of README.md and docs/*.md.
func docExamples(t *testing.T) []docExample {
	t.Helper()
	files, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []docExample
	for _, file := range append([]string{"README.md"}, files...) {
		data := readDoc(t, file)
		for _, m := range hclFence.FindAllStringSubmatchIndex(data, -1) {
			before := strings.TrimRight(data[:m[0]], "\n")
			out = append(out, docExample{
				where:    fmt.Sprintf("%s:%d", file, strings.Count(data[:m[0]], "\n")+1),
				text:     data[m[2]:m[3]],
				fragment: strings.HasSuffix(before, fragmentMarker),
			})
		}
	}
	return out
}

func readDoc(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// loadAfterDefault loads text as a drop-in after the default policy, with the real fixers.
func loadAfterDefault(name, text string) (*rules.Policy, hcl.Diagnostics) {
	return rules.Parse([]rules.Source{
		{Name: rules.BuiltinName, Data: DefaultPolicy},
		{Name: name, Data: []byte(text)},
	}, remediate.Builtin(remediate.Deps{}))
}

var factsFile = regexp.MustCompile(`facts_file\s*=\s*"([^"]+)"`)

// TestDocsHCLExamples loads every ```hcl block of the docs: a policy file as a drop-in
// after the default policy, policy tests against the default policy (with an empty facts
// file wherever they name one), and fragments as rules made of each line. Any diagnostic,
// warnings too, fails.
func TestDocsHCLExamples(t *testing.T) {
	examples := docExamples(t)
	if len(examples) < 12 {
		t.Fatalf("found only %d examples; is the fence pattern still right?", len(examples))
	}
	for _, ex := range examples {
		t.Run(ex.where, func(t *testing.T) {
			var diags hcl.Diagnostics
			switch {
			case ex.fragment:
				var b strings.Builder
				for i, line := range strings.Split(strings.TrimSpace(ex.text), "\n") {
					fmt.Fprintf(&b, "rule \"line%d\" {\n  severity = \"info\"\n  %s\n", i, line)
					if strings.HasPrefix(line, "when") {
						b.WriteString("  summary = \"x\"\n}\n")
					} else {
						b.WriteString("  when = facts.imds.reachable\n}\n")
					}
				}
				_, diags = loadAfterDefault(ex.where, b.String())
			case strings.Contains(ex.text, "test \""):
				p := loadDefault(t)
				fsys := fstest.MapFS{"example_test.hcl": {Data: []byte(ex.text)}}
				for _, m := range factsFile.FindAllStringSubmatch(ex.text, -1) {
					fsys[m[1]] = &fstest.MapFile{Data: []byte("{}")}
				}
				_, _, diags = rules.LoadTests(fsys, ex.where, p)
			case strings.HasPrefix(ex.where, "docs/fleet.md:"):
				// A fleet policy's drop-in, over the fleet facts.
				_, diags = rules.ParseSchema([]rules.Source{{Name: fleet.BuiltinName, Data: DefaultFleetPolicy}, {Name: ex.where, Data: []byte(ex.text)}},
					fleet.Kinds, fleet.Schema())
			default:
				_, diags = loadAfterDefault(ex.where, ex.text)
			}
			if len(diags) > 0 {
				t.Errorf("the example\n%s\ndoes not load:\n%s", ex.text, diags.Error())
			}
		})
	}
}

// TestDocsCounts: the numbers of rules and tests the docs show are those of the default
// policy and its tests.
func TestDocsCounts(t *testing.T) {
	p := loadDefault(t)
	cases, _, diags := rules.LoadTests(PolicyTests(), "policytests", p)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	tests := []struct {
		file    string
		pattern string // its first group is the count
		want    int
	}{
		// `imdsmend validate` on the default policy with a drop-in that turns one rule off.
		{"docs/policy.md", `policy is valid: (\d+) rules \(1 disabled\)`, len(p.Rules)},
		// `imdsmend test` runs the built-in tests first.
		{"docs/policy.md", `ok  \t<built-in>\t(\d+) tests`, len(cases)},
	}
	for _, tt := range tests {
		m := regexp.MustCompile(tt.pattern).FindStringSubmatch(readDoc(t, tt.file))
		if m == nil {
			t.Errorf("%s: nothing matches %q", tt.file, tt.pattern)
			continue
		}
		if n, _ := strconv.Atoi(m[1]); n != tt.want {
			t.Errorf("%s says %q; the code has %d", tt.file, m[0], tt.want)
		}
	}
}

var ruleRow = regexp.MustCompile("(?m)^\\| `([a-z0-9_]+)` \\| (info|warning|critical) \\|")

// TestDocsRuleTable: README's table of the default policy's rules lists each rule with its
// severity, and no other.
func TestDocsRuleTable(t *testing.T) {
	p := loadDefault(t)
	_, table, ok := strings.Cut(readDoc(t, "README.md"), "### What the default policy finds and mends")
	if !ok {
		t.Fatal("README.md has no section \"What the default policy finds and mends\"")
	}
	table, _, _ = strings.Cut(table, "\n#")
	var got, want []string
	for _, m := range ruleRow.FindAllStringSubmatch(table, -1) {
		got = append(got, m[1]+" "+m[2])
	}
	for _, r := range p.Rules {
		want = append(want, r.Name+" "+string(r.Severity))
	}
	// The table orders rules for a reader, not as the policy does.
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("README.md's rule table lists\n%s\nbut the default policy has\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestDocsErrorMessages: each error message docs/policy.md quotes is what loading the
// mistake it shows prints, up to where the quote cuts it short.
func TestDocsErrorMessages(t *testing.T) {
	tests := []struct {
		name, file, policy string
		cut                string // the quote ends before this
	}{
		{
			name: "unknown remediation kind",
			file: "/etc/imdsmend/policy.hcl",
			policy: `rule "imds_unreachable" {
  when     = contains(["connection_refused", "timeout"], facts.imds.class)
  severity = "critical"
  summary  = "IMDS is unreachable"
}

rule "firewall_blocks_imds" {
  when     = length([for r in facts.firewall.rules : r if r.blocks]) > 0
  severity = "critical"
  summary  = "a firewall rule blocks IMDS"

  remediate "firewall_delte" {
    rules = [for r in facts.firewall.rules : r if r.blocks]
  }
}`,
			cut: " Known kinds:",
		},
		{
			name: "duplicate rule",
			file: "/etc/imdsmend/policy.d/10-team.hcl",
			policy: `rule "imds_down" {
  when     = facts.imds.class == "timeout"
  severity = "critical"
  summary  = "IMDS times out"
  hint     = "look for a DROP rule"
}

# the same name again, by mistake
rule "imds_down" {
  when     = facts.imds.class == "connection_refused"
  severity = "critical"
  summary  = "IMDS refuses connections"
}`,
			cut: " Rename one",
		},
	}
	doc := readDoc(t, "docs/policy.md")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := rules.Parse([]rules.Source{{Name: tt.file, Data: []byte(tt.policy)}}, remediate.Builtin(remediate.Deps{}))
			if len(diags) != 1 {
				t.Fatalf("want one diagnostic, got:\n%s", diags.Error())
			}
			d := diags[0]
			quote, _, _ := strings.Cut(d.Detail, tt.cut)
			for _, want := range []string{"Error: " + d.Summary, fmt.Sprintf("on %s line %d", d.Subject.Filename, d.Subject.Start.Line), quote} {
				if !strings.Contains(doc, want) {
					t.Errorf("docs/policy.md does not quote what is printed: %s", want)
				}
			}
		})
	}
}

// TestDocsUnknownReason: the reason docs/policy.md shows for an undecided rule is the one
// the report prints.
func TestDocsUnknownReason(t *testing.T) {
	const policy = `rule "firewall_blocks_imds" {
  when     = anytrue([for r in facts.firewall.rules : r.blocks])
  severity = "critical"
  summary  = "a firewall rule blocks IMDS"
}`
	p, diags := rules.Parse([]rules.Source{{Name: "/etc/imdsmend/policy.hcl", Data: []byte(policy)}}, remediate.Builtin(remediate.Deps{}))
	if len(diags) > 0 {
		t.Fatal(diags.Error())
	}
	v, err := facts.Value(&facts.Facts{Probes: map[string]facts.ProbeResult{"firewall": {Error: "iptables: lock timeout"}}})
	if err != nil {
		t.Fatal(err)
	}
	unknown := p.Evaluate(v, nil).Unknown
	if len(unknown) != 1 {
		t.Fatalf("undecided: %+v, want firewall_blocks_imds", unknown)
	}
	// As report.WriteText prints it.
	if line := fmt.Sprintf("UNKNOWN  %s: %s\n", unknown[0].Rule, unknown[0].Reason); !strings.Contains(readDoc(t, "docs/policy.md"), line) {
		t.Errorf("docs/policy.md does not show what is printed:\n%s", line)
	}
}
