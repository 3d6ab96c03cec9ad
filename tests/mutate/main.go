// Command mutate is imdsmend's mutation tester for the safety-critical packages: it makes
// one-line changes (mutants) to their source, one at a time, and runs each package's unit
// tests against every change. A mutant the tests do not notice ("survives") marks code no
// test pins down. `make mutate` runs it; docs/testing.md records the score and survivors.
//
//	go run ./tests/mutate                      # every mutant of the default files
//	go run ./tests/mutate -max 30 -seed 1      # a deterministic sample of 30 per package
//	go run ./tests/mutate -pkg remediate -files 'remediate/ledger.go' -json
//
// Mutants reach the compiler through `go test -overlay`, so the files in the working tree
// never change. A mutant that does not compile is discarded, not counted. A test run that
// fails, panics or times out kills the mutant. Runs are sequential (one build or test at a
// time) so the tool can share a small machine. As root each test run is confined to a
// fresh network namespace and a read-only view of the file system, so a mutant that breaks
// a test's fake runner or temporary root cannot touch the host's firewall, routes or /etc.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// defaultFiles are the safety-critical files: firewall facts and evaluation, the fixers
// and the ledger, redaction, and the policy checks.
const defaultFiles = "facts/firewall/*.go,remediate/*.go,internal/redact/*.go,rules/check.go,rules/load.go,rules/settings.go"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "mutate: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	files   string
	pkgs    string
	max     int
	seed    uint64
	timeout time.Duration
	json    bool
	list    bool
	sandbox bool
	verbose bool
}

func run(args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("mutate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.files, "files", defaultFiles, "comma-separated globs of files to mutate, relative to the module root (_test.go files are skipped)")
	fs.StringVar(&o.pkgs, "pkg", "", "comma-separated package directories to keep (e.g. remediate,facts); empty keeps all")
	fs.IntVar(&o.max, "max", 0, "test at most N compiling mutants per package, chosen by -seed; 0 tests all")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the sample taken with -max")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "time one mutant's test run may take; a timeout kills the mutant")
	fs.BoolVar(&o.json, "json", false, "print the results as JSON")
	fs.BoolVar(&o.list, "list", false, "list the mutants (after -pkg, -files, -max) without testing them")
	fs.BoolVar(&o.verbose, "v", false, "report every mutant's outcome on stderr, not only survivors")
	fs.BoolVar(&o.sandbox, "sandbox", true, "as root, run tests in a new network namespace with / read-only")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	pkgs, err := collect(root, o)
	if err != nil {
		return err
	}
	if o.list {
		for _, p := range pkgs {
			for _, m := range p.mutants {
				fmt.Fprintf(stdout, "%s  [%s]\n", m, m.Op)
			}
		}
		return nil
	}
	r, err := newRunner(root, o)
	if err != nil {
		return err
	}
	defer r.close()
	res := results{}
	for _, p := range pkgs {
		pr, err := r.testPackage(p, stderr, func(m Mutant) {
			if !o.json {
				fmt.Fprintln(stdout, "SURVIVED", m)
			}
		})
		if err != nil {
			return err
		}
		res.add(pr)
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	res.print(stdout)
	return nil
}

// pkg is one package directory's mutants, in the order they will be tried.
type pkg struct {
	dir     string // relative to the module root
	mutants []Mutant
}

// collect finds the files, groups them by package and enumerates their mutants; with
// -max they come in a shuffled order fixed by -seed.
func collect(root string, o options) ([]pkg, error) {
	keep := map[string]bool{}
	for _, p := range splitList(o.pkgs) {
		keep[filepath.Clean(p)] = true
	}
	byDir := map[string][]string{}
	seen := map[string]bool{}
	for _, glob := range splitList(o.files) {
		matches, err := filepath.Glob(filepath.Join(root, glob))
		if err != nil {
			return nil, fmt.Errorf("bad glob %q: %w", glob, err)
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("no file matches %q", glob)
		}
		for _, abs := range matches {
			rel, err := filepath.Rel(root, abs)
			if err != nil {
				return nil, fmt.Errorf("%s outside the module: %w", abs, err)
			}
			dir := filepath.Dir(rel)
			if seen[rel] || strings.HasSuffix(rel, "_test.go") || !strings.HasSuffix(rel, ".go") || (len(keep) > 0 && !keep[dir]) {
				continue
			}
			seen[rel] = true
			byDir[dir] = append(byDir[dir], rel)
		}
	}
	if len(byDir) == 0 {
		return nil, fmt.Errorf("no files left to mutate in %s after -pkg %q", o.files, o.pkgs)
	}
	var out []pkg
	for dir, files := range byDir {
		sort.Strings(files)
		p := pkg{dir: dir}
		for _, f := range files {
			src, err := os.ReadFile(filepath.Join(root, f))
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", f, err)
			}
			ms, err := Mutants(f, src)
			if err != nil {
				return nil, err
			}
			p.mutants = append(p.mutants, ms...)
		}
		if o.max > 0 {
			rng := rand.New(rand.NewPCG(o.seed, 0))
			rng.Shuffle(len(p.mutants), func(i, j int) { p.mutants[i], p.mutants[j] = p.mutants[j], p.mutants[i] })
			if o.list && len(p.mutants) > o.max {
				p.mutants = p.mutants[:o.max]
			}
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].dir < out[j].dir })
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// pkgResult counts one package's mutants by outcome.
type pkgResult struct {
	Dir       string   `json:"package"`
	Total     int      `json:"total"` // every mutant of the package's files
	Killed    int      `json:"killed"`
	TimedOut  int      `json:"timed_out"` // included in killed
	Survived  []Mutant `json:"survived"`
	Discarded int      `json:"discarded"` // did not compile
	Score     float64  `json:"score"`     // killed / (killed + survived)
}

type results struct {
	Packages []pkgResult `json:"packages"`
	Killed   int         `json:"killed"`
	Survived int         `json:"survived"`
	Score    float64     `json:"score"`
}

func (r *results) add(p pkgResult) {
	p.Score = score(p.Killed, len(p.Survived))
	r.Packages = append(r.Packages, p)
	r.Killed += p.Killed
	r.Survived += len(p.Survived)
	r.Score = score(r.Killed, r.Survived)
}

func score(killed, survived int) float64 {
	if killed+survived == 0 {
		return 0
	}
	return float64(killed) / float64(killed+survived)
}

func (r results) print(w io.Writer) {
	fmt.Fprintln(w)
	for _, p := range r.Packages {
		fmt.Fprintf(w, "%-18s score %5.1f%%  killed %d (%d by timeout), survived %d, discarded %d (not compiling), of %d mutants\n",
			p.Dir, 100*p.Score, p.Killed, p.TimedOut, len(p.Survived), p.Discarded, p.Total)
	}
	fmt.Fprintf(w, "%-18s score %5.1f%%  killed %d, survived %d\n", "overall", 100*r.Score, r.Killed, r.Survived)
}
