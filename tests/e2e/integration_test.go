package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"gopkg.in/yaml.v3"
)

// The integration files in packaging/ are copied by users into tools this machine
// doesn't run (cloud-init, Packer, SSM); these tests check what can be checked offline:
// their syntax and shape, and that every imdsmend command line in them is one the
// binary accepts.

// TestCloudInitExample: a #cloud-config whose policy drop-in the binary accepts and whose
// runcmd runs imdsmend apply.
func TestCloudInitExample(t *testing.T) {
	data := readFile(t, filepath.Join(moduleRoot(t), "packaging/cloud-init/imdsmend.yaml"))
	if !strings.HasPrefix(string(data), "#cloud-config\n") {
		t.Fatal("cloud-init reads user data as cloud-config only when its first line is #cloud-config")
	}
	var cfg struct {
		WriteFiles []struct {
			Path        string `yaml:"path"`
			Owner       string `yaml:"owner"`
			Permissions string `yaml:"permissions"`
			Content     string `yaml:"content"`
		} `yaml:"write_files"`
		Runcmd [][]string `yaml:"runcmd"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("parse: %v", err)
	}
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.hcl")
	if err := os.WriteFile(policy, readFile(t, filepath.Join(moduleRoot(t), "policy.hcl")), 0o644); err != nil {
		t.Fatal(err)
	}
	dropIns := 0
	for _, f := range cfg.WriteFiles {
		if filepath.Dir(f.Path) != "/etc/imdsmend/policy.d" || filepath.Ext(f.Path) != ".hcl" {
			continue
		}
		dropIns++
		// imdsmend refuses a drop-in others may write.
		if f.Owner != "root:root" || f.Permissions != "0644" {
			t.Errorf("%s: owner %q permissions %q, want root:root 0644", f.Path, f.Owner, f.Permissions)
		}
		writeUnit(t, dir, "policy.d/"+filepath.Base(f.Path), f.Content)
	}
	if dropIns == 0 {
		t.Fatal("write_files installs no drop-in in /etc/imdsmend/policy.d")
	}
	if out, err := imdsmendCmd("validate", "--policy", policy).CombinedOutput(); err != nil {
		t.Errorf("imdsmend validate rejects the policy with the drop-in: %v\n%s", err, out)
	}
	applies := 0
	for _, c := range cfg.Runcmd {
		line := strings.Join(c, " ")
		if strings.Contains(line, "imdsmend apply") {
			applies++
		}
		checkCommandLines(t, line)
	}
	if applies != 1 {
		t.Errorf("runcmd runs imdsmend apply %d times, want once", applies)
	}
}

// TestPackerTemplate: an amazon-ebs build that installs the package, and every variable
// it uses is declared.
func TestPackerTemplate(t *testing.T) {
	path := filepath.Join(moduleRoot(t), "packaging/packer/imdsmend.pkr.hcl")
	f, diags := hclparse.NewParser().ParseHCLFile(path)
	if diags.HasErrors() {
		t.Fatalf("parse: %v", diags)
	}
	body := f.Body.(*hclsyntax.Body)
	declared := map[string]bool{}
	sources := map[string]bool{}
	var builds []*hclsyntax.Block
	for _, b := range body.Blocks {
		switch b.Type {
		case "variable":
			declared["var."+b.Labels[0]] = true
		case "locals":
			for name := range b.Body.Attributes {
				declared["local."+name] = true
			}
		case "source":
			sources["source."+strings.Join(b.Labels, ".")] = b.Labels[0] == "amazon-ebs"
		case "build":
			builds = append(builds, b)
		}
	}
	for _, tr := range traversals(body) {
		name := tr.RootName()
		if name == "var" || name == "local" {
			ref := name + "." + tr[1].(hcl.TraverseAttr).Name
			if !declared[ref] {
				t.Errorf("%s: %s is not declared", tr.SourceRange(), ref)
			}
		}
	}
	if len(builds) != 1 {
		t.Fatalf("%d build blocks, want 1", len(builds))
	}
	build := builds[0].Body
	refs, diags := hcl.ExprList(build.Attributes["sources"].Expr)
	if diags.HasErrors() || len(refs) == 0 {
		t.Fatalf("build.sources: %v", diags)
	}
	for _, r := range refs {
		v, _ := r.Value(nil)
		if !sources[v.AsString()] {
			t.Errorf("build.sources names %s, not an amazon-ebs source of this file", v.AsString())
		}
	}
	var script []string
	for _, p := range build.Blocks {
		if p.Type == "provisioner" && p.Labels[0] == "shell" {
			lines, diags := hcl.ExprList(p.Body.Attributes["inline"].Expr)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			for _, l := range lines {
				v, diags := l.Value(nil)
				if diags.HasErrors() {
					t.Fatal(diags)
				}
				script = append(script, v.AsString())
			}
		}
	}
	if !slices.ContainsFunc(script, func(l string) bool { return strings.Contains(l, "apt-get install -y /tmp/imdsmend.deb") }) {
		t.Errorf("the shell provisioner does not install the package:\n%s", strings.Join(script, "\n"))
	}
	if !slices.Contains(script, "systemctl is-enabled imdsmend-boot.service imdsmend.timer") {
		t.Error("the build does not check that the package enabled the boot unit and the timer")
	}
	checkCommandLines(t, script...)
}

// TestSSMDocument: an SSM Command document, schema 2.2, whose one step runs
// imdsmend apply --format json on Linux.
func TestSSMDocument(t *testing.T) {
	var doc struct {
		SchemaVersion string `json:"schemaVersion"`
		Description   string `json:"description"`
		Parameters    map[string]struct {
			Type           string `json:"type"`
			Description    string `json:"description"`
			Default        string `json:"default"`
			AllowedPattern string `json:"allowedPattern"`
		} `json:"parameters"`
		MainSteps []struct {
			Action       string              `json:"action"`
			Name         string              `json:"name"`
			Precondition map[string][]string `json:"precondition"`
			Inputs       struct {
				RunCommand     []string `json:"runCommand"`
				TimeoutSeconds string   `json:"timeoutSeconds"`
			} `json:"inputs"`
		} `json:"mainSteps"`
	}
	dec := json.NewDecoder(strings.NewReader(string(readFile(t, filepath.Join(moduleRoot(t), "packaging/ssm/imdsmend-apply.json")))))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("parse: %v", err)
	}
	if doc.SchemaVersion != "2.2" || doc.Description == "" || len(doc.MainSteps) != 1 {
		t.Fatalf("schemaVersion %q, %d steps; want 2.2 with a description and one step", doc.SchemaVersion, len(doc.MainSteps))
	}
	step := doc.MainSteps[0]
	if step.Action != "aws:runShellScript" || step.Name == "" || !slices.Equal(step.Precondition["StringEquals"], []string{"platformType", "Linux"}) {
		t.Errorf("step %+v: want a named aws:runShellScript for Linux", step)
	}
	var lines []string
	for _, l := range step.Inputs.RunCommand {
		// {{ name }} is SSM's parameter syntax; each must be declared, and is replaced by
		// its default here.
		for name, p := range doc.Parameters {
			l = strings.ReplaceAll(l, "{{ "+name+" }}", p.Default)
		}
		if strings.Contains(l, "{{") {
			t.Errorf("runCommand uses an undeclared parameter: %s", l)
		}
		lines = append(lines, l)
	}
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "imdsmend apply --format json") }) {
		t.Errorf("runCommand does not run imdsmend apply --format json:\n%s", strings.Join(lines, "\n"))
	}
	checkCommandLines(t, lines...)
}

// checkCommandLines runs every simple `imdsmend …` command in the shell lines with --help
// added: cobra rejects an unknown subcommand or flag then, and runs nothing.
func checkCommandLines(t *testing.T, lines ...string) {
	t.Helper()
	for _, line := range lines {
		for _, part := range strings.FieldsFunc(line, func(r rune) bool { return r == '&' || r == '|' || r == ';' || r == '"' }) {
			words := strings.Fields(part)
			for len(words) > 0 && words[0] == "sudo" {
				words = words[1:]
			}
			if len(words) == 0 || words[0] != "imdsmend" {
				continue
			}
			args := slices.DeleteFunc(words[1:], func(w string) bool { return w == ">" || strings.HasPrefix(w, "/var/") })
			if out, err := imdsmendCmd(append(args, "--help")...).CombinedOutput(); err != nil {
				t.Errorf("imdsmend %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	}
}

// imdsmendCmd is the binary under test, with IMDS pointed at a closed loopback port.
func imdsmendCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(bins.Imdsmend, args...)
	cmd.Env = append(os.Environ(), "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1")
	return cmd
}

// traversals lists every variable reference in the body, nested blocks included.
func traversals(body *hclsyntax.Body) []hcl.Traversal {
	var out []hcl.Traversal
	for _, a := range body.Attributes {
		out = append(out, a.Expr.Variables()...)
	}
	for _, b := range body.Blocks {
		out = append(out, traversals(b.Body)...)
	}
	return out
}
