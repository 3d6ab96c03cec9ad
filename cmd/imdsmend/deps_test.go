package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStartupDeps keeps out of the binary the packages that cost start-up time on every run
// and do no work imdsmend needs (docs/bench.md, "Start-up"): their package initialisation
// was most of `imdsmend version`.
func TestStartupDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	banned := []struct{ prefix, why string }{
		{"github.com/google/go-cmp/", "pulled in by hclwrite; its init is the largest single cost"},
		{"github.com/hashicorp/hcl/v2/gohcl", "imports hclwrite and go-cmp; decode with hcl's low-level API"},
		{"github.com/hashicorp/hcl/v2/hclwrite", "imports go-cmp"},
		{"github.com/prometheus/client_golang/", "its registry initialises procfs and protobuf; the textfile is written by hand"},
		{"github.com/prometheus/procfs", "through the client registry"},
		{"google.golang.org/protobuf/", "through the client registry and expfmt"},
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, b := range banned {
			if strings.HasPrefix(pkg, b.prefix) {
				t.Errorf("imdsmend imports %s: %s", pkg, b.why)
			}
		}
	}
}
