package report

// MESSAGE_IDs of imdsmend's journal entries, one per kind of event. They were generated
// once with `journalctl --new-id128` and never change: journalctl filters
// (`journalctl MESSAGE_ID=…`) and the catalog (packaging/imdsmend.catalog, shown by
// `journalctl -x`) depend on them. Add a kind with a new ID and a catalog entry; never
// reuse or edit one.
const (
	// MessageFinding: a one-shot run (check, plan, apply, undo) ended with this finding open.
	MessageFinding = "71b21328751d4e7383abcd711026ffe1"
	// MessageFindingOpened: watch saw a finding that was not open in its previous pass.
	MessageFindingOpened = "0b6d1dace4464173904ff2690f0df7f4"
	// MessageFindingChanged: watch saw an open finding change severity or summary.
	MessageFindingChanged = "6fde8e99a23947f49c9a78870d2ee47e"
	// MessageFindingClosed: watch saw an open finding go away.
	MessageFindingClosed = "73ff08ea8dce4807920029f839861ca0"

	// One per action status (report actions[].status).
	MessageActionPlanned   = "5a325763aef64ed58222124037ccef75"
	MessageActionApplied   = "efafc7292e0d4d3eb086d7310b6ce237"
	MessageActionUnchanged = "c2fb6390e707465a82c1d92b2c268c0e"
	MessageActionSkipped   = "2bc53164dade42ff9fd35ce4d41e59af"
	MessageActionFailed    = "5c00754ebe6142b2bf3795d55f3d9e3f"
	MessageActionReverted  = "356030b08f734dd0aa679a590b0c4de2"

	// MessageRunSummary: the verdict of a run (one-shot) or of a watch pass that changed
	// something.
	MessageRunSummary = "b7527d1552a4496ea3aaca55750c38aa"
	// MessagePassFailed: a watch pass ended without a report (lock held, policy error).
	MessagePassFailed = "fe725f06559846afaa9d4b6373c12721"
	// MessagePolicyReloaded: watch loaded a new policy on SIGHUP.
	MessagePolicyReloaded = "29b881f26c684161b5d4fde85bf050f9"
	// MessagePolicyRejected: watch refused a new policy with errors and kept the old one.
	MessagePolicyRejected = "b958c046aa6840cbb4ab8aab215b593e"
	// MessageSourceFailed: one of watch's event sources could not start or stopped; its
	// changes are seen at the interval.
	MessageSourceFailed = "976085a5a90347749b07d61bfe7fb61a"
)

// MessageIDs names every MESSAGE_ID, for the catalog check and the docs.
var MessageIDs = map[string]string{
	MessageFinding:         "finding",
	MessageFindingOpened:   "finding opened",
	MessageFindingChanged:  "finding changed",
	MessageFindingClosed:   "finding closed",
	MessageActionPlanned:   "action planned",
	MessageActionApplied:   "action applied",
	MessageActionUnchanged: "action unchanged",
	MessageActionSkipped:   "action skipped",
	MessageActionFailed:    "action failed",
	MessageActionReverted:  "action reverted",
	MessageRunSummary:      "run summary",
	MessagePassFailed:      "pass failed",
	MessagePolicyReloaded:  "policy reloaded",
	MessagePolicyRejected:  "policy reload rejected",
	MessageSourceFailed:    "event source failed",
}
