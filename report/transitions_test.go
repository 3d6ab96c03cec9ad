package report

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// kinds names the entries' kinds, for compact expectations.
func kinds(entries []Entry) []string {
	var out []string
	for _, e := range entries {
		k := MessageIDs[e.MessageID]
		if r := e.Fields[FieldRule]; r != "" {
			k += " " + r
		}
		out = append(out, k)
	}
	return out
}

func TestTrackerLogsTransitionsOnly(t *testing.T) {
	unreachable := Finding{Rule: "imds_unreachable", Severity: "critical", Summary: "unreachable: timeout"}
	refused := Finding{Rule: "imds_unreachable", Severity: "critical", Summary: "unreachable: connection_refused"}
	proxy := Finding{Rule: "proxy_leak", Severity: "warning", Summary: "proxy"}
	fix := Action{ID: "firewall_delete-1", Rule: "firewall_blocks_imds", Kind: "firewall_delete", Target: "OUTPUT", Status: "applied"}
	skipped := Action{ID: "no_proxy-2", Rule: "proxy_leak", Kind: "no_proxy", Target: "/etc/environment", Status: "skipped"}
	passes := []struct {
		name string
		rep  Report
		want []string
	}{
		{"first pass: everything is news", Report{Healthy: false, Findings: []Finding{unreachable}},
			[]string{"finding opened imds_unreachable", "run summary"}},
		{"same again: silence", Report{Healthy: false, Findings: []Finding{unreachable}}, nil},
		{"summary changes", Report{Healthy: false, Findings: []Finding{refused}},
			[]string{"finding changed imds_unreachable", "run summary"}},
		{"second finding with a skipped action", Report{Healthy: false, Findings: []Finding{refused, proxy}, Actions: []Action{skipped}},
			[]string{"finding opened proxy_leak", "action skipped proxy_leak", "run summary"}},
		{"skipped again: silence", Report{Healthy: false, Findings: []Finding{refused, proxy}, Actions: []Action{skipped}}, nil},
		{"fix applied, both close", Report{Healthy: true, Actions: []Action{fix}},
			[]string{"finding closed imds_unreachable", "finding closed proxy_leak", "action applied firewall_blocks_imds", "run summary"}},
		{"fix applied again: logged again", Report{Healthy: true, Actions: []Action{fix}},
			[]string{"action applied firewall_blocks_imds", "run summary"}},
		{"healthy and quiet", Report{Healthy: true}, nil},
		{"unhealthy without findings (undecided rules)", Report{Healthy: false, Unknown: []Unknown{{Rule: "x"}}}, []string{"run summary"}},
	}
	var tr Tracker
	for _, p := range passes {
		got := tr.Entries(&p.rep, "timer")
		if diff := cmp.Diff(p.want, kinds(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", p.name, diff)
		}
		for _, e := range got {
			if e.Fields[FieldTrigger] != "timer" {
				t.Errorf("%s: entry %q lacks the trigger", p.name, e.Message)
			}
		}
	}
}
