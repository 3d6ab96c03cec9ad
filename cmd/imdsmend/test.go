package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/imdsmend/imdsmend"
	"github.com/imdsmend/imdsmend/internal/engine"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/rules"
	"github.com/spf13/cobra"
)

func newTestCommand(g *globalFlags) *cobra.Command {
	var fleetPolicy bool
	cmd := &cobra.Command{
		Use:   "test [DIR]",
		Short: "Run the policy's own tests (*_test.hcl)",
		Long: `Run policy tests: each test "NAME" { facts = {...} expect = [...] } block evaluates the
policy on the facts given and checks which rules fire. With DIR, the *_test.hcl files in DIR
test the active policy (--policy). Without DIR, the tests shipped with the built-in policy test
it, the tests shipped with the built-in fleet policy (fleet.hcl) test that, and *_test.hcl files
beside the active policy (and in its policy.d/) test the active policy.
Like --policy, DIR is a path inside --root. With --fleet, the same for the fleet policy of
imdsmend fleet (its drop-ins in fleet.d/). Exits 1 when a test fails.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var suites []testSuite
			var err error
			if fleetPolicy {
				suites, err = fleetTestSuites(cmd, g, args)
			} else {
				e, lerr := g.loadEngine(cmd)
				if lerr != nil {
					return lerr
				}
				suites, err = testSuites(e, e.Paths.File(g.policyFile()), args)
			}
			if err != nil {
				return err
			}
			passed := true
			for _, s := range suites {
				passed = runSuite(cmd, s) && passed
			}
			if !passed {
				return exitError{report.ExitError}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&fleetPolicy, "fleet", false, "test the fleet policy of imdsmend fleet (--policy, default /etc/imdsmend/fleet.hcl) instead")
	return cmd
}

// testSuite is a set of test files and the policy they test.
type testSuite struct {
	name   string
	fsys   fs.FS
	prefix string // of file names in messages
	policy *rules.Policy
}

func testSuites(e *engine.Engine, mainFile string, args []string) ([]testSuite, error) {
	if len(args) == 1 {
		dir, err := testDir(e.Paths, args[0])
		if err != nil {
			return nil, err
		}
		if !hasTests(os.DirFS(dir)) {
			return nil, fmt.Errorf("no *%s files in %s", rules.TestFileSuffix, dir)
		}
		return []testSuite{{dir, os.DirFS(dir), dir, e.Policy}}, nil
	}
	builtin := e.Policy
	if !slices.Equal(e.Policy.Sources, []string{rules.BuiltinName}) {
		// The active policy is another, or has drop-ins: the shipped tests test the original.
		var diags hcl.Diagnostics
		if builtin, diags = rules.Parse([]rules.Source{{Name: rules.BuiltinName, Data: imdsmend.DefaultPolicy}}, e.Registry); diags.HasErrors() {
			return nil, errors.New("the built-in policy does not load; this build is broken")
		}
	}
	fleetSuite, err := builtinFleetSuite()
	if err != nil {
		return nil, err
	}
	suites := []testSuite{{"<built-in>", imdsmend.PolicyTests(), "<built-in>/policytests", builtin}, fleetSuite}
	for _, dir := range []string{filepath.Dir(mainFile), filepath.Join(filepath.Dir(mainFile), rules.DropInDir)} {
		if hasTests(os.DirFS(dir)) {
			suites = append(suites, testSuite{dir, os.DirFS(dir), dir, e.Policy})
		}
	}
	return suites, nil
}

// testDir is DIR inside --root, as the tree there sees it, like every path imdsmend
// reads. Without --root, a relative DIR names a directory in the working directory.
func testDir(p paths.Paths, dir string) (string, error) {
	if p.Root == "" || p.Root == "/" {
		return dir, nil
	}
	resolved, err := p.Resolve(dir)
	if err != nil {
		return "", fmt.Errorf("test directory %s under --root %s: %w", dir, p.Root, err)
	}
	return p.File(resolved), nil
}

func hasTests(fsys fs.FS) bool {
	names, err := fs.Glob(fsys, "*"+rules.TestFileSuffix)
	return err == nil && len(names) > 0
}

// runSuite loads and runs one suite, printing like `go test`; it reports whether all passed.
func runSuite(cmd *cobra.Command, s testSuite) bool {
	cases, files, diags := rules.LoadTests(s.fsys, s.prefix, s.policy)
	if len(diags) > 0 {
		for name, f := range s.policy.Files {
			files[name] = f
		}
		w := hcl.NewDiagnosticTextWriter(cmd.ErrOrStderr(), files, 0, false) // unwrapped, as printDiagnostics
		_ = w.WriteDiagnostics(diags)
	}
	if diags.HasErrors() {
		fmt.Fprintf(cmd.OutOrStdout(), "FAIL\t%s\t[the tests do not load]\n", s.name)
		return false
	}
	results := make([]rules.TestResult, 0, len(cases))
	for _, tc := range cases {
		results = append(results, s.policy.RunTest(tc))
	}
	return rules.WriteTestResults(cmd.OutOrStdout(), s.name, results)
}
