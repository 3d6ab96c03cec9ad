package main

import (
	"fmt"
	"time"

	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/report"
	"github.com/spf13/cobra"
)

// record writes a one-shot run's audit trail: journal entries (or text on stderr without
// journald), the metrics file when asked for, and STATUS= under systemd. None of them can
// fail the run: each problem is said on stderr and the report still goes out.
func (g *globalFlags) record(cmd *cobra.Command, rep *report.Report) {
	report.NewJournal(cmd.ErrOrStderr()).Write(report.RunEntries(rep))
	if path, err := g.metricsPath(); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "imdsmend: %v\n", err)
	} else if path != "" {
		if err := report.WriteMetrics(paths.New(g.root), path, rep, time.Now()); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "imdsmend: %v\n", err)
		}
	}
	if err := report.NewNotifier().Status(report.RunStatusLine(rep)); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "imdsmend: %v\n", err)
	}
}
