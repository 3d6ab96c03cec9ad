package main

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/imdsmend/imdsmend/facts"
	"github.com/spf13/cobra"
)

func newFactsCommand(g *globalFlags) *cobra.Command {
	var schema bool
	cmd := &cobra.Command{
		Use:   "facts",
		Short: "Print the gathered facts (the variables rules can use)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if schema {
				_, err := fmt.Fprint(cmd.OutOrStdout(), facts.Markdown())
				return err
			}
			e, err := g.loadEngine(cmd)
			if err != nil {
				return err
			}
			g.sayUnprivileged(cmd)
			ctx, cancel := g.withTimeout(cmd.Context())
			defer cancel()
			f := e.Gather(ctx)
			if g.format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(f)
			}
			return writeFactsText(cmd, f)
		},
	}
	cmd.Flags().BoolVar(&schema, "schema", false, "print the documented schema of the facts (docs/facts.md) instead")
	return cmd
}

// writeFactsText prints the facts as HCL-like `path = value` lines.
func writeFactsText(cmd *cobra.Command, f *facts.Facts) error {
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	var tree map[string]any
	if err := json.Unmarshal(data, &tree); err != nil {
		return err
	}
	flatten(cmd, "facts", tree)
	return nil
}

func flatten(cmd *cobra.Command, prefix string, v any) {
	switch t := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(t) {
			flatten(cmd, prefix+"."+k, t[k])
		}
	case []any:
		for i, e := range t {
			flatten(cmd, fmt.Sprintf("%s[%d]", prefix, i), e)
		}
	default:
		b, _ := json.Marshal(t)
		fmt.Fprintf(cmd.OutOrStdout(), "%s = %s\n", prefix, b)
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
