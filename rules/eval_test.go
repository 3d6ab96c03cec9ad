package rules

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/facts/firewall"
	"github.com/imdsmend/imdsmend/facts/route"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/zclconf/go-cty/cty"
)

const evalPolicy = `
rule "imds_down" {
  when     = contains(["timeout", "connection_refused"], facts.imds.class)
  severity = "critical"
  summary  = "IMDS at ${facts.imds.endpoint} is down: ${facts.imds.class}"
  hint     = "look at the firewall"
  evidence = { class = facts.imds.class, attempts = facts.imds.attempts }
}

rule "blocked" {
  when     = anytrue([for r in facts.firewall.rules : r.blocks])
  severity = "critical"
  summary  = "${length([for r in facts.firewall.rules : r if r.blocks])} rule(s) block IMDS"

  remediate "firewall_delete" {
    rules = [for r in facts.firewall.rules : r.id if r.blocks]
  }
}

rule "route_bad" {
  when     = !facts.route.ok
  severity = "warning"
  summary  = "route is ${facts.route.type}"
}

rule "off" {
  when     = facts.route.ok
  severity = "info"
  summary  = "never evaluated"
  enabled  = false
}

rule "summary_breaks" {
  when     = facts.imds.class == "timeout"
  severity = "info"
  summary  = "first rule is ${facts.firewall.rules[0].id}"
}

rule "guarded" {
  when     = facts.route.type == "never" || try(facts.firewall.rules[0].id == "never", false)
  severity = "info"
  summary  = "never"
}
`

func value(t *testing.T, f *facts.Facts) cty.Value {
	t.Helper()
	v, err := facts.Value(f)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// resultView makes a Result comparable: Args and Evidence as JSON text.
type resultView struct {
	Findings []findingView
	Requests []requestView
	Unknown  []Unknown
}

type findingView struct{ Rule, Severity, Summary, Hint, Evidence string }
type requestView struct{ Rule, Kind, Args string }

func view(t *testing.T, r Result) resultView {
	t.Helper()
	var v resultView
	for _, f := range r.Findings {
		v.Findings = append(v.Findings, findingView{f.Rule, string(f.Severity), f.Summary, f.Hint, string(f.Evidence)})
	}
	for _, q := range r.Requests {
		args, err := json.Marshal(ctyJSON{q.Args})
		if err != nil {
			t.Fatal(err)
		}
		v.Requests = append(v.Requests, requestView{q.Rule, q.Kind, string(args)})
	}
	v.Unknown = r.Unknown
	return v
}

func TestEvaluate(t *testing.T) {
	p := mustParse(t, "policy.hcl", evalPolicy)
	down := &types.IMDS{Endpoint: "http://169.254.169.254", Class: "timeout", Attempts: 3}
	blockers := &firewall.Firewall{Rules: []firewall.Rule{
		{ID: "fw-1", Blocks: true}, {ID: "fw-2", Blocks: false}, {ID: "fw-3", Blocks: true},
	}}
	tests := []struct {
		name  string
		facts *facts.Facts
		only  []string
		want  resultView
	}{
		{
			name:  "healthy",
			facts: &facts.Facts{IMDS: &types.IMDS{Class: "ok"}, Firewall: &firewall.Firewall{}, Route: &route.Route{Type: "unicast", OK: true}},
		},
		{
			name:  "findings with interpolated text, evidence and remediation arguments",
			facts: &facts.Facts{IMDS: down, Firewall: blockers, Route: &route.Route{Type: "blackhole"}},
			want: resultView{
				Findings: []findingView{
					{"imds_down", "critical", "IMDS at http://169.254.169.254 is down: timeout", "look at the firewall", `{"attempts":3,"class":"timeout"}`},
					{"blocked", "critical", "2 rule(s) block IMDS", "", ""},
					{"route_bad", "warning", "route is blackhole", "", ""},
					{"summary_breaks", "info", "first rule is fw-1", "", ""},
				},
				Requests: []requestView{{"blocked", "firewall_delete", `{"rules":["fw-1","fw-3"]}`}},
			},
		},
		{
			name: "a failed probe makes only the rules that read its section unknown",
			facts: &facts.Facts{IMDS: down, Route: &route.Route{Type: "unicast", OK: true},
				Probes: map[string]facts.ProbeResult{"firewall": {Error: "iptables: permission denied"}}},
			want: resultView{
				Findings: []findingView{
					{"imds_down", "critical", "IMDS at http://169.254.169.254 is down: timeout", "look at the firewall", `{"attempts":3,"class":"timeout"}`},
				},
				Unknown: []Unknown{
					{"blocked", `facts.firewall is null (probe firewall failed: iptables: permission denied)`},
					{"summary_breaks", `the condition held, but policy.hcl:36,45: Attempt to get attribute from null value; This value is null, so it does not have any attributes.`},
				},
			},
		},
		{
			name:  "a section nobody filled",
			facts: &facts.Facts{IMDS: &types.IMDS{Class: "ok"}, Firewall: &firewall.Firewall{}},
			only:  []string{"route_bad"},
			want: resultView{Unknown: []Unknown{
				{"route_bad", `facts.route is null (no probe filled it)`},
			}},
		},
		{
			name: "a null read inside try() is not named as the cause",
			facts: &facts.Facts{IMDS: &types.IMDS{Class: "ok"},
				Probes: map[string]facts.ProbeResult{"firewall": {Error: "iptables: permission denied"}}},
			only: []string{"guarded"},
			want: resultView{Unknown: []Unknown{
				{"guarded", `facts.route is null (no probe filled it)`},
			}},
		},
		{
			name:  "only runs the named rules",
			facts: &facts.Facts{IMDS: down, Firewall: blockers, Route: &route.Route{Type: "blackhole"}},
			only:  []string{"route_bad", "off"},
			want:  resultView{Findings: []findingView{{"route_bad", "warning", "route is blackhole", "", ""}}},
		},
		{
			name:  "no facts at all",
			facts: nil,
			only:  []string{"route_bad"},
			want: resultView{Unknown: []Unknown{
				{"route_bad", `no facts were gathered (policy.hcl:21,20: Attempt to get attribute from null value; This value is null, so it does not have any attributes.)`},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := view(t, p.Evaluate(value(t, tt.facts), tt.only))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Evaluate (-want +got):\n%s", diff)
			}
		})
	}
}
