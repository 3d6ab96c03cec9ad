// Command imdsmend keeps the EC2 Instance Metadata Service reachable: it finds what blocks
// IMDS on this instance and mends it. docs/contract.md is the command-line contract.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/imdsmend/imdsmend"
	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/internal/engine"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/remediate"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/rules"
	"github.com/spf13/cobra"
)

// Set at link time.
var version = "dev"

// globalFlags are the flags every command takes (docs/contract.md).
type globalFlags struct {
	policy   string
	format   string
	root     string
	stateDir string
	only     []string
	timeout  time.Duration
	// metricsFile, when set, receives a Prometheus textfile after every run.
	metricsFile string
}

// exitError carries an exit code other than 1 through cobra.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return report.ExitHealthy
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintf(stderr, "imdsmend: %v\n", err)
		return report.ExitError
	}
}

func newRootCommand() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "imdsmend",
		Short:         "Find and mend what blocks the EC2 Instance Metadata Service",
		Long:          "Find and mend what blocks the EC2 Instance Metadata Service.\n\n" + kindsHelp(remediate.Builtin(remediate.Deps{})),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.policy, "policy", paths.DefaultPolicyFile, "main policy file; drop-ins are read from policy.d/ beside it")
	pf.StringVar(&g.format, "format", "text", "output format: text or json")
	pf.StringVar(&g.root, "root", "/", "prefix for every file imdsmend reads or writes (--policy, --state-dir, --metrics-file, the DIR of imdsmend test, /etc, /proc); links inside it never lead out; the run lock stays the host's")
	pf.StringVar(&g.stateDir, "state-dir", paths.DefaultStateDir, "state directory (ledger, counters)")
	pf.StringSliceVar(&g.only, "only", nil, "evaluate only these rules (comma-separated)")
	pf.DurationVar(&g.timeout, "timeout", 30*time.Second, "bound for the whole run (longer than 0)")
	pf.StringVar(&g.metricsFile, "metrics-file", "", "write Prometheus metrics to this file after every run (node_exporter textfile collector)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if g.format != "text" && g.format != "json" {
			return fmt.Errorf("--format must be text or json, not %q", g.format)
		}
		if g.timeout <= 0 {
			// 0 would make IMDS look unreachable and a negative bound every rule unknown.
			return fmt.Errorf("--timeout must be longer than 0, not %s", g.timeout)
		}
		return nil
	}
	root.AddCommand(
		newCheckCommand(g), newPlanCommand(g), newApplyCommand(g), newUndoCommand(g),
		newFactsCommand(g), newValidateCommand(g), newVersionCommand(), newWatchCommand(g),
		newTestCommand(g), newResetCommand(g), newFleetCommand(g),
	)
	return root
}

// kindsHelp lists the remediation kinds a policy may use, in sorted order.
func kindsHelp(reg *remediate.Registry) string {
	var b strings.Builder
	b.WriteString("Remediation kinds (remediate \"KIND\" { … } in the policy):\n")
	for _, kind := range reg.Kinds() {
		f, _ := reg.Get(kind)
		fmt.Fprintf(&b, "  %-16s %s (needs settings.allow.%s)\n", kind, f.Doc(), f.Permission())
	}
	return b.String()
}

// engineOptions turns the flags into engine options.
func (g *globalFlags) engineOptions(cmd *cobra.Command) engine.Options {
	return engine.Options{
		PolicyFile:     g.policyFile(),
		PolicyExplicit: cmd.Flags().Changed("policy"),
		BuiltinPolicy:  imdsmend.DefaultPolicy,
		Root:           g.root,
		StateDir:       g.stateDir,
		Only:           g.only,
	}
}

// policyFile is --policy as seen inside --root. Without --root, a relative path names a
// file in the working directory, as `imdsmend validate --policy ./policy.hcl` means.
func (g *globalFlags) policyFile() string {
	if filepath.IsAbs(g.policy) || (g.root != "" && g.root != "/") {
		return g.policy
	}
	abs, err := filepath.Abs(g.policy)
	if err != nil {
		return g.policy
	}
	return abs
}

// metricsPath is --metrics-file as seen inside --root, like every file imdsmend writes
// (report.WriteMetrics writes it there, following links only inside --root). Without
// --root, a relative path names a file in the working directory. "" when no metrics are
// asked for.
func (g *globalFlags) metricsPath() (string, error) {
	if g.metricsFile == "" || (g.root != "" && g.root != "/") {
		return g.metricsFile, nil
	}
	return filepath.Abs(g.metricsFile)
}

// loadEngine loads and validates the policy, printing diagnostics; errors end the run.
func (g *globalFlags) loadEngine(cmd *cobra.Command) (*engine.Engine, error) {
	e, diags := engine.New(g.engineOptions(cmd))
	if err := onlyError(diags); err != nil {
		return nil, err
	}
	if len(diags) > 0 {
		printDiagnostics(cmd, e, diags)
	}
	if diags.HasErrors() {
		return nil, errors.New("the policy has errors; nothing was run (check it with `imdsmend validate`)")
	}
	return e, nil
}

// onlyError is the error of a --only naming no rule of the policy: the command line is
// wrong, not the policy (which `imdsmend validate` would call valid).
func onlyError(diags hcl.Diagnostics) error {
	for _, d := range diags {
		if d.Severity == hcl.DiagError && d.Summary == engine.UnknownOnly {
			return errors.New(d.Detail)
		}
	}
	return nil
}

func printDiagnostics(cmd *cobra.Command, e *engine.Engine, diags hcl.Diagnostics) {
	var p *rules.Policy
	if e != nil {
		p = e.Policy
	}
	printPolicyDiagnostics(cmd, p, diags)
}

// sayUnprivileged says once, before a run that probes this system, which facts the
// process cannot read and which capability that needs, so that the rules left unknown
// for it need no other explanation.
func (g *globalFlags) sayUnprivileged(cmd *cobra.Command) {
	missing := facts.MissingPrivileges(g.root)
	if len(missing) == 0 {
		return
	}
	var probes, needs []string
	for _, m := range missing {
		probes = append(probes, m.Probe)
		needs = append(needs, fmt.Sprintf("reading %s needs %s", m.What, m.Capability))
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "imdsmend: not run as root, so the %s facts are not gathered (%s); the rules that use them are unknown. Run imdsmend as root for a full verdict.\n",
		strings.Join(probes, " and "), strings.Join(needs, "; "))
}

// withTimeout bounds the whole run by --timeout.
func (g *globalFlags) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, g.timeout)
}

// emit writes the report in the chosen format and turns its verdict into the exit code.
func (g *globalFlags) emit(cmd *cobra.Command, rep *report.Report) error {
	g.record(cmd, rep)
	var err error
	if g.format == "json" {
		err = report.WriteJSON(cmd.OutOrStdout(), rep)
	} else {
		err = report.WriteText(cmd.OutOrStdout(), rep)
	}
	if err != nil {
		return err
	}
	if code := rep.ExitCode(); code != report.ExitHealthy {
		return exitError{code}
	}
	return nil
}

// splitIDs accepts IDs separated by spaces or commas.
func splitIDs(args []string) []string {
	var ids []string
	for _, a := range args {
		for _, id := range strings.Split(a, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
	}
	return ids
}
