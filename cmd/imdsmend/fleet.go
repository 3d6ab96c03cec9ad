package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/imdsmend/imdsmend"
	"github.com/imdsmend/imdsmend/fleet"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/remediate"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/rules"
	"github.com/spf13/cobra"
)

// fleetFlags are the flags of imdsmend fleet's subcommands.
type fleetFlags struct {
	regions []string
	roles   []string
	filters []string
	last    bool
}

// fleetTimeout bounds a fleet command when --timeout is not given: applying changes at EC2's
// mutating rate takes minutes, not the instance commands' 30 s.
const fleetTimeout = time.Hour

func newFleetCommand(g *globalFlags) *cobra.Command {
	ff := &fleetFlags{}
	cmd := &cobra.Command{
		Use:   "fleet audit|plan|apply|undo",
		Short: "Audit and mend metadata options across regions and accounts through the EC2 API",
		Long: `Audit and mend the instance metadata options of a fleet through the EC2 API, from a
workstation or a CI job with AWS credentials — never from the instances themselves. The fleet
policy (--policy, default /etc/imdsmend/fleet.hcl, else the built-in fleet.hcl) is the policy
language of the instance checks over facts.instance, facts.account and facts.region
(docs/fleet.md). For fleet commands --format also takes csv, --timeout defaults to 1h, and
--state-dir (the fleet ledger's) to ~/.local/state/imdsmend for users other than root. Exit
codes as for check, plan, apply and undo.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if g.format != "text" && g.format != "json" && g.format != "csv" {
				return fmt.Errorf("--format must be text, json or csv, not %q", g.format)
			}
			if g.timeout <= 0 {
				return fmt.Errorf("--timeout must be longer than 0, not %s", g.timeout)
			}
			if !cmd.Flags().Changed("timeout") {
				g.timeout = fleetTimeout
			}
			return nil
		},
	}
	pf := cmd.PersistentFlags()
	pf.StringSliceVar(&ff.regions, "regions", nil, "regions to read, comma-separated, or all (DescribeRegions); default the configured region (AWS_REGION, the profile's)")
	pf.StringArrayVar(&ff.roles, "role-arn", nil, "reach an account by assuming this role (repeatable); default the caller's own account")
	pf.StringArrayVar(&ff.filters, "filter", nil, "list only instances matching a DescribeInstances filter, e.g. tag:Team=web (repeatable)")
	for _, sub := range []struct{ use, short, command string }{
		{"audit", "List every instance whose metadata options break or weaken it", fleet.CommandAudit},
		{"plan", "List the changes apply would make, instance by instance", fleet.CommandPlan},
		{"apply", "Change the metadata options the fleet policy asks for (ModifyInstanceMetadataOptions)", fleet.CommandApply},
	} {
		cmd.AddCommand(&cobra.Command{
			Use: sub.use, Short: sub.short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return runFleet(cmd, g, ff, sub.command) },
		})
	}
	undo := &cobra.Command{
		Use: "undo --last", Short: "Revert the changes of the last fleet apply", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !ff.last {
				return errors.New("give --last: fleet undo reverts the changes of the most recent fleet apply")
			}
			return runFleet(cmd, g, ff, fleet.CommandUndo)
		},
	}
	undo.Flags().BoolVar(&ff.last, "last", false, "revert every change of the most recent fleet apply that made any")
	cmd.AddCommand(undo)
	return cmd
}

// fleetGCPercent trades memory for CPU in fleet commands: a workstation or CI job has the
// memory (about 120 MB for 10,000 instances), and collecting less often cuts a fifth of an
// audit's CPU time.
const fleetGCPercent = 400

// runFleet loads the fleet policy, runs the command and prints its report.
func runFleet(cmd *cobra.Command, g *globalFlags, ff *fleetFlags, command string) error {
	debug.SetGCPercent(fleetGCPercent)
	p := paths.New(g.root)
	pol, err := loadFleetPolicy(cmd, g, p)
	if err != nil {
		return err
	}
	if err := pol.CheckOnly(g.only); err != nil {
		return err
	}
	var filters []fleet.Filter
	for _, s := range ff.filters {
		f, err := fleet.ParseFilter(s)
		if err != nil {
			return fmt.Errorf("--filter %q: %w", s, err)
		}
		filters = append(filters, f)
	}
	ctx, cancel := g.withTimeout(cmd.Context())
	defer cancel()
	cloud, regions, err := fleetCloud(ctx, ff.regions)
	if err != nil {
		return err
	}
	stateDir, err := fleetStateDir(cmd, g)
	if err != nil {
		return err
	}
	f := fleet.New(fleet.Config{
		Cloud: cloud, Policy: pol, RoleARNs: ff.roles, Regions: regions, Filters: filters, Only: g.only,
		Ledger:   remediate.NewLedgerIn(p, filepath.Join(stateDir, "fleet-ledger.jsonl")),
		Progress: fleetProgress(cmd.ErrOrStderr()),
	})
	var rep *fleet.Report
	switch command {
	case fleet.CommandAudit:
		rep = f.Audit(ctx)
	case fleet.CommandPlan:
		rep = f.Plan(ctx)
	case fleet.CommandApply:
		rep = f.Apply(ctx)
	case fleet.CommandUndo:
		if rep, err = f.Undo(ctx); err != nil {
			return err
		}
	}
	return emitFleet(cmd, g, p, rep)
}

// loadFleetPolicy loads the fleet policy --policy names, or the default one, printing
// diagnostics; errors end the run.
func loadFleetPolicy(cmd *cobra.Command, g *globalFlags, p paths.Paths) (*rules.Policy, error) {
	pol, diags := fleetPolicy(cmd, g, p)
	if len(diags) > 0 {
		printPolicyDiagnostics(cmd, pol, diags)
	}
	if diags.HasErrors() {
		return nil, errors.New("the fleet policy has errors; nothing was run (check it with `imdsmend validate --fleet`)")
	}
	return pol, nil
}

func fleetPolicy(cmd *cobra.Command, g *globalFlags, p paths.Paths) (*rules.Policy, hcl.Diagnostics) {
	explicit := cmd.Flags().Changed("policy")
	file := fleet.DefaultPolicyFile
	if explicit {
		file = g.policyFile()
	}
	return fleet.LoadPolicy(fleet.LoadOptions{
		MainFile: p.File(file), Explicit: explicit, Builtin: imdsmend.DefaultFleetPolicy,
		Open: func(name string) (*os.File, error) { return p.OpenFile(p.System(name), os.O_RDONLY, 0) },
	})
}

// printPolicyDiagnostics prints diagnostics with the policy's source lines.
func printPolicyDiagnostics(cmd *cobra.Command, pol *rules.Policy, diags hcl.Diagnostics) {
	files := map[string]*hcl.File{}
	if pol != nil {
		files = pol.Files
	}
	// Width 0: no wrapping, which would split the commands details give to copy and paste.
	w := hcl.NewDiagnosticTextWriter(cmd.ErrOrStderr(), files, 0, false)
	_ = w.WriteDiagnostics(diags)
}

// fleetCloud loads the AWS configuration and settles the regions: --regions, else the
// configured region. STS and DescribeRegions use the configured region, else the first
// region named, else us-east-1.
func fleetCloud(ctx context.Context, regions []string) (*fleet.AWS, []string, error) {
	all := slices.Contains(regions, "all")
	if all && len(regions) > 1 {
		return nil, nil, errors.New("--regions all lists every region; name no other with it")
	}
	cloud, err := fleet.NewAWS(ctx, "")
	switch {
	case err != nil:
		return nil, nil, err
	case len(regions) == 0 && cloud.Region() == "":
		return nil, nil, fleet.ErrNoRegion
	case len(regions) == 0:
		return cloud, []string{cloud.Region()}, nil
	case cloud.Region() != "":
		return cloud, regions, nil
	}
	home := "us-east-1"
	if !all {
		home = regions[0]
	}
	cloud, err = fleet.NewAWS(ctx, home)
	return cloud, regions, err
}

// fleetStateDir is where the fleet ledger lives: --state-dir, else /var/lib/imdsmend for
// root and $XDG_STATE_HOME/imdsmend (~/.local/state/imdsmend) for anyone else: a fleet
// command runs on a workstation or in CI, as whoever holds the credentials.
func fleetStateDir(cmd *cobra.Command, g *globalFlags) (string, error) {
	if cmd.Flags().Changed("state-dir") || os.Geteuid() == 0 {
		return g.stateDir, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "imdsmend"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no state directory for the fleet ledger: give --state-dir (%w)", err)
	}
	return filepath.Join(home, ".local", "state", "imdsmend"), nil
}

// fleetProgress draws a bar when w is a terminal, else writes JSON lines.
func fleetProgress(w io.Writer) fleet.Progress {
	f, ok := w.(*os.File)
	terminal := false
	if ok {
		if fi, err := f.Stat(); err == nil {
			terminal = fi.Mode()&os.ModeCharDevice != 0
		}
	}
	return fleet.NewProgress(w, terminal)
}

// emitFleet prints the report, writes the metrics file and turns the verdict into the exit
// code.
func emitFleet(cmd *cobra.Command, g *globalFlags, p paths.Paths, rep *fleet.Report) error {
	var err error
	switch g.format {
	case "json":
		err = fleet.WriteJSON(cmd.OutOrStdout(), rep)
	case "csv":
		err = fleet.WriteCSV(cmd.OutOrStdout(), rep)
	default:
		err = fleet.WriteText(cmd.OutOrStdout(), rep)
	}
	if err != nil {
		return err
	}
	if file, merr := g.metricsPath(); merr == nil && file != "" {
		if werr := p.WriteFile(file, fleet.Metrics(rep, time.Now()), 0o644); werr != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "imdsmend: write metrics file (--metrics-file): %v\n", werr)
		}
	}
	if code := rep.ExitCode(); code != report.ExitHealthy {
		return exitError{code}
	}
	return nil
}

// fleetSummary is validate's line for a valid fleet policy.
func fleetSummary(p *rules.Policy) string {
	return strings.Replace(describePolicy(p), "policy is valid", "fleet policy is valid", 1)
}

// validateFleet is validate --fleet: the fleet policy, checked against the fleet facts.
func validateFleet(cmd *cobra.Command, g *globalFlags) error {
	pol, diags := fleetPolicy(cmd, g, paths.New(g.root))
	if g.format == "json" {
		if err := writeValidateJSON(cmd, diags); err != nil {
			return err
		}
	} else if len(diags) > 0 {
		printPolicyDiagnostics(cmd, pol, diags)
	}
	switch {
	case diags.HasErrors() && g.format == "json":
		return exitError{report.ExitError}
	case diags.HasErrors():
		return errors.New("the fleet policy has errors")
	case g.format != "json":
		fmt.Fprintln(cmd.OutOrStdout(), fleetSummary(pol))
	}
	return nil
}

// fleetTestSuites are test --fleet's suites: DIR's tests against the active fleet policy;
// without DIR, the built-in fleet tests against the built-in fleet policy and the tests
// beside the active one (and in its fleet.d/) against it.
func fleetTestSuites(cmd *cobra.Command, g *globalFlags, args []string) ([]testSuite, error) {
	p := paths.New(g.root)
	pol, err := loadFleetPolicy(cmd, g, p)
	if err != nil {
		return nil, err
	}
	if len(args) == 1 {
		dir, err := testDir(p, args[0])
		if err != nil {
			return nil, err
		}
		if !hasTests(os.DirFS(dir)) {
			return nil, fmt.Errorf("no *%s files in %s", rules.TestFileSuffix, dir)
		}
		return []testSuite{{dir, os.DirFS(dir), dir, pol}}, nil
	}
	builtin, err := builtinFleetSuite()
	if err != nil {
		return nil, err
	}
	suites := []testSuite{builtin}
	if slices.Equal(pol.Sources, []string{fleet.BuiltinName}) {
		return suites, nil
	}
	main := pol.Sources[0]
	for _, dir := range []string{filepath.Dir(main), filepath.Join(filepath.Dir(main), fleet.DropInDir)} {
		if hasTests(os.DirFS(dir)) {
			suites = append(suites, testSuite{dir, os.DirFS(dir), dir, pol})
		}
	}
	return suites, nil
}

// builtinFleetSuite is the built-in fleet policy's tests.
func builtinFleetSuite() (testSuite, error) {
	p, diags := rules.ParseSchema([]rules.Source{{Name: fleet.BuiltinName, Data: imdsmend.DefaultFleetPolicy}}, fleet.Kinds, fleet.Schema())
	if diags.HasErrors() {
		return testSuite{}, errors.New("the built-in fleet policy does not load; this build is broken")
	}
	return testSuite{"<built-in fleet>", imdsmend.FleetPolicyTests(), "<built-in>/fleettests", p}, nil
}
