package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newUndoCommand(g *globalFlags) *cobra.Command {
	var last bool
	cmd := &cobra.Command{
		Use:   "undo [--last | ACTION_ID...]",
		Short: "Revert recorded changes",
		RunE: func(cmd *cobra.Command, args []string) error {
			ids := splitIDs(args)
			if last == (len(ids) > 0) {
				return errors.New("give either --last or one or more action IDs")
			}
			e, err := g.loadEngine(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := g.withTimeout(cmd.Context())
			defer cancel()
			rep, err := e.Undo(ctx, last, ids)
			if err != nil {
				return err
			}
			return g.emit(cmd, rep)
		},
	}
	cmd.Flags().BoolVar(&last, "last", false, "revert every change of the most recent run that made any")
	return cmd
}
