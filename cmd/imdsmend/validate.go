package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/imdsmend/imdsmend/internal/engine"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/rules"
	"github.com/spf13/cobra"
)

func newValidateCommand(g *globalFlags) *cobra.Command {
	var fleetPolicy bool
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Parse and type-check the policy; print diagnostics",
		Long: `Load the policy and its drop-ins as every command does — refusing files anyone but root
could write — and check every expression against the facts schema without running a probe.
Diagnostics name the file, line and column. Exits 1 when the policy has errors.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fleetPolicy {
				return validateFleet(cmd, g)
			}
			e, diags := engine.New(g.engineOptions(cmd))
			if g.format == "json" {
				if err := writeValidateJSON(cmd, diags); err != nil {
					return err
				}
			} else if len(diags) > 0 {
				printDiagnostics(cmd, e, diags)
			}
			if diags.HasErrors() {
				if g.format == "json" {
					return exitError{report.ExitError}
				}
				return errors.New("the policy has errors")
			}
			if g.format != "json" {
				fmt.Fprintln(cmd.OutOrStdout(), describePolicy(e.Policy))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&fleetPolicy, "fleet", false, "validate the fleet policy of imdsmend fleet (default /etc/imdsmend/fleet.hcl, else the built-in fleet.hcl) against the fleet facts")
	return cmd
}

// describePolicy sums up a valid policy in one line.
func describePolicy(p *rules.Policy) string {
	disabled := 0
	for _, r := range p.Rules {
		if !r.Enabled {
			disabled++
		}
	}
	var allowed []string
	for _, perm := range types.Permissions() {
		if p.Settings.Allow.Permits(perm) {
			allowed = append(allowed, string(perm))
		}
	}
	allows := "allows no changes"
	if len(allowed) > 0 {
		allows = "allows " + strings.Join(allowed, ", ")
	}
	return fmt.Sprintf("policy is valid: %d rules (%d disabled) from %s; mode %s; %s",
		len(p.Rules), disabled, strings.Join(p.Sources, ", "), p.Settings.Mode, allows)
}

// validateDiagnostic is one diagnostic in `validate --format json`.
type validateDiagnostic struct {
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail,omitempty"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
}

func writeValidateJSON(cmd *cobra.Command, diags hcl.Diagnostics) error {
	out := struct {
		Valid       bool                 `json:"valid"`
		Diagnostics []validateDiagnostic `json:"diagnostics"`
	}{Valid: !diags.HasErrors(), Diagnostics: []validateDiagnostic{}}
	for _, d := range diags {
		vd := validateDiagnostic{Severity: "warning", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagError {
			vd.Severity = "error"
		}
		if d.Subject != nil {
			vd.File, vd.Line, vd.Column = d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column
		}
		out.Diagnostics = append(out.Diagnostics, vd)
	}
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
