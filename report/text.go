package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/imdsmend/imdsmend/internal/redact"
)

// WriteText writes the report for people: the IMDS state, one line per finding with what
// to do next, one line per action.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	if r.IMDS != nil {
		state := "unreachable"
		if r.IMDS.Reachable {
			state = "reachable (" + r.IMDS.Version + ")"
		}
		if r.IMDS.Marked {
			state += " along " + r.IMDS.MediatedBy + "'s path"
		}
		fmt.Fprintf(&b, "IMDS %s: %s, class %s", r.IMDS.Endpoint, state, r.IMDS.Class)
		if r.IMDS.Status != 0 {
			fmt.Fprintf(&b, ", HTTP %d", r.IMDS.Status)
		}
		fmt.Fprintf(&b, ", %.1f ms\n", r.IMDS.LatencyMS)
	}
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "%-8s %s: %s\n", strings.ToUpper(string(f.Severity)), f.Rule, f.Summary)
		if f.Hint != "" {
			fmt.Fprintf(&b, "         next: %s\n", f.Hint)
		}
	}
	for _, u := range r.Unknown {
		fmt.Fprintf(&b, "UNKNOWN  %s: %s\n", u.Rule, u.Reason)
	}
	for _, a := range r.Actions {
		fmt.Fprintf(&b, "%-9s %s %s (%s) [%s]", strings.ToUpper(string(a.Status)), a.Kind, a.Target, a.Rule, a.ID)
		if a.Detail != "" {
			fmt.Fprintf(&b, ": %s", redact.String(a.Detail))
		}
		if a.Error != "" {
			fmt.Fprintf(&b, " (%s)", redact.String(a.Error))
		}
		if a.InterruptedRun != "" {
			fmt.Fprintf(&b, " [found after interrupted run %s]", a.InterruptedRun)
		}
		b.WriteByte('\n')
	}
	verdict := "healthy"
	if !r.Healthy {
		verdict = "NOT healthy"
	}
	fmt.Fprintf(&b, "%s: %s, %d open finding(s), %d action(s), %.1f ms\n", r.Command, verdict, len(r.Findings), len(r.Actions), r.DurationMS)
	_, err := io.WriteString(w, b.String())
	return err
}
