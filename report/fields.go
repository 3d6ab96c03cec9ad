package report

// Journal field names (docs/contract.md, "journald"). The first seven are the public contract;
// the others add context and may grow. Every name must pass validFieldName.
const (
	FieldRule     = "IMDSMEND_RULE"
	FieldSeverity = "IMDSMEND_SEVERITY"
	FieldAction   = "IMDSMEND_ACTION" // the action's kind, e.g. firewall_delete
	FieldActionID = "IMDSMEND_ACTION_ID"
	FieldTarget   = "IMDSMEND_TARGET"
	FieldStatus   = "IMDSMEND_STATUS" // the action's status
	FieldRunID    = "IMDSMEND_RUN_ID"

	FieldCommand    = "IMDSMEND_COMMAND" // check, plan, apply, undo or watch
	FieldTrigger    = "IMDSMEND_TRIGGER" // watch: what started the pass (start, timer, reload, …)
	FieldHint       = "IMDSMEND_HINT"
	FieldEvidence   = "IMDSMEND_EVIDENCE" // the finding's evidence as compact JSON
	FieldDetail     = "IMDSMEND_DETAIL"
	FieldError      = "IMDSMEND_ERROR"
	FieldHealthy    = "IMDSMEND_HEALTHY" // "true" or "false"
	FieldFindings   = "IMDSMEND_FINDINGS"
	FieldActions    = "IMDSMEND_ACTIONS"
	FieldUnknown    = "IMDSMEND_UNKNOWN" // comma-separated rules that could not be decided
	FieldIMDSClass  = "IMDSMEND_IMDS_CLASS"
	FieldDurationMS = "IMDSMEND_DURATION_MS"
	FieldPolicy     = "IMDSMEND_POLICY" // the main policy file a reload read
	// The run that stopped between a change and its result, which this run reconciled.
	FieldInterruptedRun = "IMDSMEND_INTERRUPTED_RUN"

	// Fields journald itself defines.
	fieldMessageID        = "MESSAGE_ID"
	fieldSyslogIdentifier = "SYSLOG_IDENTIFIER"
)

// SyslogIdentifier is every entry's SYSLOG_IDENTIFIER: `journalctl -t imdsmend`.
const SyslogIdentifier = "imdsmend"
