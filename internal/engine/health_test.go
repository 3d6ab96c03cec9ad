package engine

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/rules"
)

// TestHealth: a run is healthy when no finding above info severity is open and no rule is
// undecided; whatever the order, one warning, critical or undecided rule makes it not
// healthy. The report carries every finding and undecided rule either way.
func TestHealth(t *testing.T) {
	info := rules.Finding{Rule: "restricted", Severity: types.SeverityInfo, Summary: "kept on purpose"}
	warning := rules.Finding{Rule: "throttled", Severity: types.SeverityWarning, Summary: "429"}
	critical := rules.Finding{Rule: "blocked", Severity: types.SeverityCritical, Summary: "REJECT"}
	unknown := rules.Unknown{Rule: "firewall", Reason: "facts.firewall is null"}
	tests := []struct {
		name     string
		findings []rules.Finding
		unknown  []rules.Unknown
		healthy  bool
	}{
		{name: "nothing found", healthy: true},
		{name: "info only", findings: []rules.Finding{info, info}, healthy: true},
		{name: "a warning", findings: []rules.Finding{warning}},
		{name: "a critical finding", findings: []rules.Finding{critical}},
		{name: "info, then a warning", findings: []rules.Finding{info, warning}},
		{name: "a warning, then info", findings: []rules.Finding{warning, info}},
		{name: "an undecided rule alone", unknown: []rules.Unknown{unknown}},
		{name: "info and an undecided rule", findings: []rules.Finding{info}, unknown: []rules.Unknown{unknown}},
	}
	imds := &types.IMDS{Class: types.ClassOK, Reachable: true}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := &report.Report{}
			fill(rep, &facts.Facts{IMDS: imds}, rules.Result{Findings: tt.findings, Unknown: tt.unknown})
			if rep.Healthy != tt.healthy {
				t.Errorf("healthy = %v, want %v", rep.Healthy, tt.healthy)
			}
			var findings []string
			for _, f := range rep.Findings {
				findings = append(findings, string(f.Severity)+" "+f.Rule)
			}
			var want []string
			for _, f := range tt.findings {
				want = append(want, string(f.Severity)+" "+f.Rule)
			}
			if diff := cmp.Diff(want, findings); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			if len(rep.Unknown) != len(tt.unknown) || rep.IMDS != imds {
				t.Errorf("report: unknown %v, imds %v; want %v, %v", rep.Unknown, rep.IMDS, tt.unknown, imds)
			}
		})
	}
}
