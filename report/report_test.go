package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/internal/types"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		rep  Report
		want int
	}{
		{"healthy check", Report{Command: "check", Healthy: true}, ExitHealthy},
		{"unhealthy check", Report{Command: "check"}, ExitFindings},
		{"plan with planned action", Report{Command: "plan", Healthy: false, Actions: []Action{{Status: "planned"}}}, ExitFindings},
		{"plan with only skipped actions but healthy", Report{Command: "plan", Healthy: true, Actions: []Action{{Status: "skipped"}}}, ExitHealthy},
		{"apply fixed everything", Report{Command: "apply", Healthy: true, Actions: []Action{{Status: "applied"}}}, ExitHealthy},
		{"apply left findings", Report{Command: "apply", Actions: []Action{{Status: "failed"}}}, ExitFindings},
		// Undo says whether it reverted what was asked, whatever the health after it.
		{"undo reverted a fix: the blocker is back", Report{Command: "undo", Actions: []Action{{Status: "reverted"}}}, ExitHealthy},
		{"undo failed on a healthy host", Report{Command: "undo", Healthy: true, Actions: []Action{{Status: "reverted"}, {Status: "failed"}}}, ExitError},
		{"undo not allowed", Report{Command: "undo", Healthy: true, Actions: []Action{{Status: "skipped"}}}, ExitError},
		{"undo with nothing to revert", Report{Command: "undo"}, ExitHealthy},
		{"undo settled an interrupted run", Report{Command: "undo", Actions: []Action{{Status: "failed", InterruptedRun: "r1"}, {Status: "reverted"}}}, ExitHealthy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rep.ExitCode(); got != tt.want {
				t.Errorf("ExitCode() = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestWriteJSONContract checks the fields docs/contract.md promises, with lists never null.
func TestWriteJSONContract(t *testing.T) {
	rep := &Report{
		Schema: Schema, Command: "check", RunID: "r1", Healthy: false,
		IMDS:     &types.IMDS{Endpoint: "http://169.254.169.254", Class: "timeout", LatencyMS: 2000},
		Findings: []Finding{{Rule: "imds_unreachable", Severity: "critical", Summary: "IMDS <unreachable>"}},
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, rep); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, buf.String())
	}
	for _, key := range []string{"schema", "command", "healthy", "imds", "findings", "actions", "duration_ms"} {
		if _, ok := got[key]; !ok {
			t.Errorf("report lacks %q", key)
		}
	}
	for _, key := range []string{"endpoint", "reachable", "version", "class", "status", "latency_ms"} {
		if _, ok := got["imds"].(map[string]any)[key]; !ok {
			t.Errorf("imds lacks %q", key)
		}
	}
	if diff := cmp.Diff([]any{}, got["actions"]); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	finding := got["findings"].([]any)[0].(map[string]any)
	if diff := cmp.Diff(map[string]any{}, finding["evidence"]); diff != "" {
		t.Errorf("evidence defaults to {} (-want +got):\n%s", diff)
	}
	if !strings.Contains(buf.String(), "IMDS <unreachable>") {
		t.Errorf("HTML escaping mangled the summary:\n%s", buf.String())
	}
}

func TestWriteText(t *testing.T) {
	rep := &Report{
		Command: "apply", Healthy: true,
		IMDS:     &types.IMDS{Endpoint: "http://169.254.169.254", Reachable: true, Version: "v2", Class: "ok", Status: 200},
		Findings: []Finding{{Rule: "firewall_restricts_imds", Severity: "info", Summary: "kept", Hint: "nothing to do"}},
		Actions:  []Action{{ID: "firewall_delete-1", Rule: "firewall_blocks_imds", Kind: "firewall_delete", Target: "filter/OUTPUT", Status: "applied"}},
	}
	var buf bytes.Buffer
	if err := WriteText(&buf, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"IMDS http://169.254.169.254: reachable (v2), class ok, HTTP 200",
		"INFO     firewall_restricts_imds: kept",
		"next: nothing to do",
		"APPLIED   firewall_delete filter/OUTPUT (firewall_blocks_imds) [firewall_delete-1]",
		"apply: healthy, 1 open finding(s), 1 action(s)",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, buf.String())
		}
	}
}
