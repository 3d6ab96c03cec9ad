package main

import (
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/spf13/cobra"
)

func newApplyCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "apply",
		Short: "Detect, fix what the policy allows, re-probe to verify",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runPass(cmd, g, types.CommandApply) },
	}
}
