package main

import (
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/spf13/cobra"
)

func newCheckCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Detect only; never changes anything",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runPass(cmd, g, types.CommandCheck) },
	}
}

// runPass runs one check, plan or apply pass and emits its report.
func runPass(cmd *cobra.Command, g *globalFlags, command types.Command) error {
	e, err := g.loadEngine(cmd)
	if err != nil {
		return err
	}
	g.sayUnprivileged(cmd)
	ctx, cancel := g.withTimeout(cmd.Context())
	defer cancel()
	rep, err := e.Run(ctx, command)
	if err != nil {
		return err
	}
	return g.emit(cmd, rep)
}
