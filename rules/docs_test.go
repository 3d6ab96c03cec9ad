package rules

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

var (
	hclBlock = regexp.MustCompile("(?s)```hcl\n(.*?)```")
	ruleName = regexp.MustCompile(`rule "([^"]+)"`)
)

// TestDocsExamples loads every HCL example of docs/policy.md, so the docs cannot show a
// policy that does not load. Rule blocks load as a drop-in after a main file defining the
// rules they name; lone `when =`/`summary =` lines load as rules of their own. Test files
// are left out: they refer to captures that exist only in the example.
func TestDocsExamples(t *testing.T) {
	data, err := os.ReadFile("../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := hclBlock.FindAllStringSubmatch(string(data), -1)
	if len(blocks) < 5 {
		t.Fatalf("found only %d examples", len(blocks))
	}
	for i, m := range blocks {
		example := m[1]
		if strings.Contains(example, `test "`) {
			continue
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			var main strings.Builder
			for _, n := range ruleName.FindAllStringSubmatch(example, -1) {
				fmt.Fprintf(&main, "rule %q {\n  when = facts.imds.reachable\n  severity = \"info\"\n  summary = \"x\"\n}\n", n[1])
			}
			dropIn := example
			if !strings.Contains(example, "rule \"") && !strings.Contains(example, "settings") {
				var b strings.Builder
				for j, line := range strings.Split(strings.TrimSpace(example), "\n") {
					fmt.Fprintf(&b, "rule \"line%d\" {\n  severity = \"info\"\n  %s\n", j, line)
					if strings.HasPrefix(line, "when") {
						b.WriteString("  summary = \"x\"\n}\n")
					} else {
						b.WriteString("  when = facts.imds.reachable\n}\n")
					}
				}
				dropIn = b.String()
			}
			if _, diags := parse(t, "policy.hcl", main.String(), "policy.d/example.hcl", dropIn); len(diags) > 0 {
				t.Errorf("example\n%s\ndoes not load:\n%s", example, diagLines(diags))
			}
		})
	}
}
