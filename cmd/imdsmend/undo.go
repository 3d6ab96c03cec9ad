package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/imdsmend/imdsmend/internal/engine"
	"github.com/spf13/cobra"
)

func newUndoCommand(g *globalFlags) *cobra.Command {
	var last, list bool
	cmd := &cobra.Command{
		Use:   "undo [--last | --list | ACTION_ID...]",
		Short: "Revert recorded changes",
		RunE: func(cmd *cobra.Command, args []string) error {
			ids := splitIDs(args)
			if modes := btoi(last) + btoi(list) + btoi(len(ids) > 0); modes != 1 {
				return errors.New("give either --last, --list or one or more action IDs")
			}
			e, err := g.loadEngine(cmd)
			if err != nil {
				return err
			}
			if list {
				return listPending(cmd, g, e)
			}
			ctx, cancel := g.withTimeout(cmd.Context())
			defer cancel()
			rep, err := e.Undo(ctx, last, ids)
			if err != nil {
				return err
			}
			if len(rep.Actions) == 0 && g.format == "text" {
				g.record(cmd, rep)
				fmt.Fprintln(cmd.OutOrStdout(), "nothing to undo: no recorded change is left to revert (`imdsmend undo --list` lists them)")
				return nil
			}
			return g.emit(cmd, rep)
		},
	}
	cmd.Flags().BoolVar(&last, "last", false, "revert every change of the most recent run that made any")
	cmd.Flags().BoolVar(&list, "list", false, "list the recorded changes that can still be reverted; change nothing")
	cmd.MarkFlagsMutuallyExclusive("last", "list")
	return cmd
}

// listPending prints the changes undo could revert, oldest first.
func listPending(cmd *cobra.Command, g *globalFlags, e *engine.Engine) error {
	pending, err := e.Pending()
	if err != nil {
		return err
	}
	if g.format == "json" {
		type row struct {
			RunID  string `json:"run_id"`
			ID     string `json:"id"`
			Rule   string `json:"rule"`
			Kind   string `json:"kind"`
			Target string `json:"target"`
		}
		rows := make([]row, 0, len(pending))
		for _, p := range pending {
			rows = append(rows, row{p.RunID, p.Change.ID, p.Change.Rule, p.Change.Kind, p.Change.Target})
		}
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if len(pending) == 0 {
		fmt.Fprintln(cmd.OutOrStdout(), "nothing to undo")
		return nil
	}
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RUN\tACTION ID\tRULE\tTARGET")
	for _, p := range pending {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.RunID, p.Change.ID, p.Change.Rule, p.Change.Target)
	}
	return w.Flush()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
