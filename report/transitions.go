package report

import (
	"maps"
	"slices"

	"github.com/imdsmend/imdsmend/internal/types"
)

// Tracker turns the reports of successive watch passes into the journal entries worth
// writing (node-problem-detector's conditions): a finding that opens, changes (severity
// or summary) or closes; every action that changed something or failed; an action whose
// status differs from the previous pass; and the verdict when any of those happened or
// health flipped. A finding open for a week is one entry, not one per pass.
type Tracker struct {
	started bool
	healthy bool
	open    map[string]Finding      // by rule
	actions map[string]types.Status // action ID → status in the previous pass
}

// alwaysLogged are action statuses written every time: something changed or failed.
var alwaysLogged = map[types.Status]bool{
	types.StatusApplied:  true,
	types.StatusFailed:   true,
	types.StatusReverted: true,
}

// Entries compares a pass with the previous one; trigger says what started the pass.
func (t *Tracker) Entries(rep *Report, trigger string) []Entry {
	base := map[string]string{FieldRunID: rep.RunID, FieldCommand: rep.Command, FieldTrigger: trigger}
	var out []Entry

	now := make(map[string]Finding, len(rep.Findings))
	for _, f := range rep.Findings {
		now[f.Rule] = f
		prev, was := t.open[f.Rule]
		switch {
		case !was:
			out = append(out, findingEntry(MessageFindingOpened, "finding opened:", f, base))
		case prev.Severity != f.Severity || prev.Summary != f.Summary:
			out = append(out, findingEntry(MessageFindingChanged, "finding changed:", f, base))
		}
	}
	for _, rule := range slices.Sorted(maps.Keys(t.open)) {
		if _, still := now[rule]; !still {
			out = append(out, findingEntry(MessageFindingClosed, "finding closed:", t.open[rule], base))
		}
	}

	statuses := make(map[string]types.Status, len(rep.Actions))
	for _, a := range rep.Actions {
		statuses[a.ID] = a.Status
		if alwaysLogged[a.Status] || t.actions[a.ID] != a.Status {
			out = append(out, actionEntry(a, base))
		}
	}

	if !t.started || len(out) > 0 || t.healthy != rep.Healthy {
		out = append(out, summaryEntry(rep, base))
	}
	t.started, t.healthy, t.open, t.actions = true, rep.Healthy, now, statuses
	return out
}
