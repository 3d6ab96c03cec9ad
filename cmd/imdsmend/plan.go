package main

import (
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/spf13/cobra"
)

func newPlanCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "plan",
		Short: "Detect and list the actions apply would take",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runPass(cmd, g, types.CommandPlan) },
	}
}
