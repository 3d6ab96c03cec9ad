package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newValidateCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Parse and type-check the policy; print diagnostics",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := g.loadEngine(cmd)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "policy is valid: %d rule(s)\n", len(e.Policy.Rules))
			return nil
		},
	}
}
