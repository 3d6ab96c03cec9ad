package report

import (
	"strings"
	"testing"
)

// TestInterruptedRunReported: a change settled after an interrupted run says so in text,
// JSON and the journal; not_applied is a notice, not a failure.
func TestInterruptedRunReported(t *testing.T) {
	rep := &Report{Command: "apply", RunID: "r2", Actions: []Action{
		{ID: "a", Kind: "firewall_delete", Target: "t", Status: "applied", InterruptedRun: "r1"},
		{ID: "b", Kind: "no_proxy", Target: "u", Status: "not_applied", InterruptedRun: "r1"},
	}}
	var text, js strings.Builder
	if err := WriteText(&text, rep); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	if strings.Count(text.String(), "[found after interrupted run r1]") != 2 {
		t.Errorf("text:\n%s", text.String())
	}
	if strings.Count(js.String(), `"interrupted_run": "r1"`) != 2 {
		t.Errorf("JSON:\n%s", js.String())
	}
	entries := RunEntries(rep)
	for _, e := range entries[:2] {
		if e.Fields[FieldInterruptedRun] != "r1" || !strings.Contains(e.Message, "interrupted run r1") {
			t.Errorf("journal entry %+v lacks the interrupted run", e)
		}
	}
	if entries[1].MessageID == MessageActionFailed {
		t.Errorf("not_applied is journaled as a failure: %+v", entries[1])
	}
}
