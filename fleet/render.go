package fleet

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/imdsmend/imdsmend/internal/redact"
	"github.com/imdsmend/imdsmend/report"
)

// WriteJSON writes the report as one indented imdsmend.fleet/v1 object.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write the JSON report: %w", err)
	}
	return nil
}

// WriteText writes the report for people: a table of findings, one of changes, the scopes
// that failed, and a summary line.
func WriteText(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(r.Findings) > 0 {
		fmt.Fprintln(tw, "ACCOUNT\tREGION\tINSTANCE\tNAME\tRULE\tSEVERITY\tENDPOINT\tTOKENS\tHOPS\tIPV6\tSTATE")
		for _, f := range r.Findings {
			o := f.Options
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", f.Account, f.Region, f.InstanceID, dash(f.Name), f.Rule, f.Severity,
				o.HTTPEndpoint, o.HTTPTokens, o.HopLimit, o.HTTPIPv6, o.State)
		}
		fmt.Fprintln(tw)
	}
	if len(r.Changes) > 0 {
		fmt.Fprintln(tw, "CHANGE\tACCOUNT\tREGION\tINSTANCE\tNAME\tSET\tSTATUS\tERROR")
		for _, c := range r.Changes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Account, c.Region, c.InstanceID, dash(c.Name), c.Set.Args(), c.Status, c.Error)
		}
		fmt.Fprintln(tw)
	}
	for _, s := range r.Scopes {
		if s.Error != "" {
			fmt.Fprintf(tw, "not read: %s\n", scopeName(s)+": "+s.Error)
		}
	}
	for _, u := range r.Unknown {
		fmt.Fprintf(tw, "undecided: %s on %s/%s/%s: %s\n", u.Rule, u.Account, u.Region, u.InstanceID, u.Reason)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	_, err := fmt.Fprintln(w, summary(r))
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func scopeName(s Scope) string {
	name := s.Account
	if name == "" {
		name = s.RoleARN
	}
	if s.Region != "" {
		name += "/" + s.Region
	}
	return name
}

// summary is the report's last line.
func summary(r *Report) string {
	if r.Command == CommandUndo {
		if len(r.Changes) == 0 {
			return "nothing to undo: no fleet apply changed anything that is not reverted yet"
		}
		return fmt.Sprintf("undo: %s", counts(r.Totals.Changes))
	}
	accounts := map[string]bool{}
	for _, s := range r.Scopes {
		accounts[s.Account+s.RoleARN] = true
	}
	var sev = map[string]int{}
	for _, f := range r.Findings {
		sev[string(f.Severity)]++
	}
	line := fmt.Sprintf("%s: %d instances in %d scopes of %d accounts (%d DescribeInstances pages): %d findings",
		r.Command, r.Totals.Instances, len(r.Scopes), len(accounts), r.Totals.Pages, len(r.Findings))
	if len(sev) > 0 {
		line += " (" + counts(sev) + ")"
	}
	if len(r.Changes) > 0 {
		line += "; changes: " + counts(r.Totals.Changes)
	}
	if r.Totals.FailedScopes > 0 {
		line += fmt.Sprintf("; %d scopes not read", r.Totals.FailedScopes)
	}
	if r.Stopped != "" {
		line += "; " + r.Stopped
	}
	if r.Healthy {
		line += "; healthy"
	}
	return line
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// csvHeader are the columns of --format csv: one row per finding, change, failed scope and
// undecided rule, told apart by record.
var csvHeader = []string{"record", "account", "region", "instance_id", "name", "rule", "severity", "status",
	"http_endpoint", "http_tokens", "hop_limit", "http_protocol_ipv6", "options_state", "set", "summary", "error"}

// WriteCSV writes the report as CSV with a header row (csvHeader).
func WriteCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(csvHeader)
	opts := func(o Options) []string {
		return []string{o.HTTPEndpoint, o.HTTPTokens, strconv.Itoa(o.HopLimit), o.HTTPIPv6, o.State}
	}
	for _, f := range r.Findings {
		row := append([]string{"finding", f.Account, f.Region, f.InstanceID, f.Name, f.Rule, string(f.Severity), ""}, opts(f.Options)...)
		_ = cw.Write(append(row, "", f.Summary, ""))
	}
	for _, c := range r.Changes {
		row := append([]string{"change", c.Account, c.Region, c.InstanceID, c.Name, strings.Join(c.Rules, " "), "", string(c.Status)}, opts(c.Before)...)
		_ = cw.Write(append(row, c.Set.Args(), c.Detail, c.Error))
	}
	for _, s := range r.Scopes {
		if s.Error != "" {
			_ = cw.Write([]string{"scope_error", s.Account, s.Region, "", s.RoleARN, "", "", "failed", "", "", "", "", "", "", "", s.Error})
		}
	}
	for _, u := range r.Unknown {
		_ = cw.Write([]string{"unknown", u.Account, u.Region, u.InstanceID, "", u.Rule, "", "", "", "", "", "", "", "", "", u.Reason})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write the CSV report: %w", err)
	}
	return nil
}

// Metric names of the fleet's Prometheus textfile (docs/fleet.md).
const (
	MetricInstances   = "imdsmend_fleet_instances"
	MetricFindings    = "imdsmend_fleet_findings"
	MetricChanges     = "imdsmend_fleet_changes"
	MetricScopeUp     = "imdsmend_fleet_scope_up"
	MetricHealthy     = "imdsmend_fleet_healthy"
	MetricLastRunTime = "imdsmend_fleet_last_run_timestamp_seconds"
	MetricRunDuration = "imdsmend_fleet_last_run_duration_seconds"
)

// Metrics renders the report as a Prometheus textfile: counts by finding, account and
// region, and by change status.
func Metrics(r *Report, end time.Time) []byte {
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	healthy := report.NewGauge(MetricHealthy, "1 when the last fleet run found no warning or critical finding and read every scope.", "command")
	healthy.Add(b2f(r.Healthy), r.Command)
	instances := report.NewGauge(MetricInstances, "Instances listed, by account and region.", "account", "region")
	up := report.NewGauge(MetricScopeUp, "1 when the account and region could be read.", "account", "region")
	for _, s := range r.Scopes {
		instances.Add(float64(s.Instances), s.Account, s.Region)
		up.Add(b2f(s.Error == ""), s.Account, s.Region)
	}
	findings := report.NewGauge(MetricFindings, "Open findings, by rule, severity, account and region.", "rule", "severity", "account", "region")
	for _, f := range r.Findings {
		findings.Add(1, f.Rule, string(f.Severity), f.Account, f.Region)
	}
	changes := report.NewGauge(MetricChanges, "Changes of the last run, by status, account and region.", "status", "account", "region")
	for _, c := range r.Changes {
		changes.Add(1, string(c.Status), c.Account, c.Region)
	}
	last := report.NewGauge(MetricLastRunTime, "When the last fleet run ended, in seconds since the epoch.", "command")
	last.Add(float64(end.UnixNano())/1e9, r.Command)
	dur := report.NewGauge(MetricRunDuration, "How long the last fleet run took.", "command")
	dur.Add(r.DurationMS/1000, r.Command)
	return report.Textfile(healthy, instances, up, findings, changes, last, dur)
}

// redactReport removes anything secret-looking from the strings of a report before it is
// printed: API error messages can quote request parameters.
func redactReport(r *Report) {
	for i := range r.Scopes {
		r.Scopes[i].Error = redact.String(r.Scopes[i].Error)
	}
	for i := range r.Changes {
		r.Changes[i].Error = redact.String(r.Changes[i].Error)
	}
}
