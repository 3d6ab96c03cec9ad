package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

func newResetCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "reset",
		Short: "Re-arm the fight-loop breaker: fixes it holds are applied again",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := g.loadEngine(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := g.withTimeout(cmd.Context())
			defer cancel()
			released, err := e.ResetBreaker(ctx)
			if err != nil {
				return fmt.Errorf("reset the breaker: %w", err)
			}
			if g.format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Released []string `json:"released"`
				}{append([]string{}, released...)})
			}
			if len(released) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "breaker reset: no fix was held")
			}
			for _, r := range released {
				fmt.Fprintf(cmd.OutOrStdout(), "breaker reset: applied again from the next run: %s\n", r)
			}
			return nil
		},
	}
}
