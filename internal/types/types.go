// Package types holds the words every stage of imdsmend shares — rule severities, action
// statuses, IMDS classes, command and permission names — and the IMDS result the report
// carries, so that the stages (facts, rules, remediate) and the report agree on them without
// importing one another: the import graph reads cmd → engine → {facts, rules, remediate} →
// report, and everything may import types, which imports nothing of imdsmend. It is kept
// small, as node-problem-detector keeps pkg/types.
package types

// Severity is a rule's severity (rule "…" { severity = … }, findings[].severity).
type Severity string

// Severities a rule may have.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Status is where a change stands (actions[].status).
type Status string

// Statuses of a change.
const (
	StatusPlanned   Status = "planned"
	StatusApplied   Status = "applied"
	StatusUnchanged Status = "unchanged"
	StatusSkipped   Status = "skipped"
	StatusFailed    Status = "failed"
	StatusReverted  Status = "reverted"
	// StatusNotApplied is an interrupted change found not made when the next run looked.
	StatusNotApplied Status = "not_applied"
)

// Command names a command that runs the pipeline (the report's command).
type Command string

// Commands that gather facts and report.
const (
	CommandCheck Command = "check"
	CommandPlan  Command = "plan"
	CommandApply Command = "apply"
	CommandUndo  Command = "undo"
	CommandWatch Command = "watch"
)

// Permission names a switch of settings { allow { … } }: which kind of change a fixer makes.
type Permission string

// Permissions, as the attribute names of settings.allow.
const (
	PermFirewall     Permission = "firewall"
	PermFiles        Permission = "files"
	PermEC2API       Permission = "ec2_api"
	PermRoutes       Permission = "routes"
	PermRestartUnits Permission = "restart_units"
	PermReboot       Permission = "reboot"
)

// Permissions lists every permission, in the order docs show them.
func Permissions() []Permission {
	return []Permission{PermFirewall, PermFiles, PermEC2API, PermRoutes, PermRestartUnits, PermReboot}
}

// IMDS is what one probe of the metadata service found (facts/imds fills it): the policy's
// facts.imds and the report's `imds` object (docs/contract.md); fields may be added, never
// renamed.
type IMDS struct {
	Endpoint    string    `cty:"endpoint" json:"endpoint" doc:"Base URL probed, e.g. http://169.254.169.254."`
	Reachable   bool      `cty:"reachable" json:"reachable" doc:"A metadata GET succeeded (with a token, or without one for v1)."`
	Version     string    `cty:"version" json:"version" doc:"\"v2\" (token PUT worked), \"v1\" (token refused with 403/404/405, tokenless GET worked) or \"\" when unreachable."`
	Class       IMDSClass `cty:"class" json:"class" doc:"ok, connection_refused, timeout, no_route, http_400, http_401, http_403, http_404, http_429, http_5xx, proxy or bad_response."`
	Status      int       `cty:"status" json:"status" doc:"HTTP status of the last response at the stage that decided the class, 0 when none arrived."`
	TokenStatus int       `cty:"token_status" json:"token_status" doc:"HTTP status of the token PUT, 0 when none arrived; when the probe reused the token an earlier probe of the process got, that PUT's status."`
	Stage       string    `cty:"stage" json:"stage" doc:"Where the probe stopped: \"token\" (the PUT) or \"get\" (the metadata GET)."`
	LatencyMS   float64   `cty:"latency_ms" json:"latency_ms" doc:"Wall time of the whole probe in milliseconds, retries included."`
	Attempts    int       `cty:"attempts" json:"attempts" doc:"HTTP requests sent, retries included."`
	Error       string    `cty:"error" json:"error,omitempty" doc:"The last error in words; never contains a token."`
	InstanceID  string    `cty:"instance_id" json:"instance_id,omitempty" doc:"The instance ID IMDS returned; empty when unreachable."`
	MediatedBy  string    `cty:"mediated_by" json:"mediated_by" doc:"\"systemd-imdsd\" when a prohibit route stops direct requests on purpose and systemd-imdsd's fwmark 0x7FFF0815 policy rule routes the daemon's own (its \"locked\" mode); the other fields then describe the daemon's path when marked is true. Empty otherwise."`
	Marked      bool      `cty:"marked" json:"marked" doc:"The requests carried systemd-imdsd's fwmark (SO_MARK, which needs CAP_NET_ADMIN), so they took the daemon's own path to IMDS. False when IMDS is not mediated, or when this process may not mark its sockets and the daemon's path went untested."`
}

// IMDSClass is how a probe of the metadata service ended (facts.imds.class).
type IMDSClass string

// IMDS classes.
const (
	ClassOK                IMDSClass = "ok"
	ClassConnectionRefused IMDSClass = "connection_refused"
	ClassTimeout           IMDSClass = "timeout"
	ClassNoRoute           IMDSClass = "no_route"
	ClassHTTP400           IMDSClass = "http_400"
	ClassHTTP401           IMDSClass = "http_401"
	ClassHTTP403           IMDSClass = "http_403"
	ClassHTTP404           IMDSClass = "http_404"
	ClassHTTP429           IMDSClass = "http_429"
	ClassHTTP5xx           IMDSClass = "http_5xx"
	ClassProxy             IMDSClass = "proxy"
	ClassBadResponse       IMDSClass = "bad_response"
)

// IMDSClasses lists every facts.imds.class value.
func IMDSClasses() []IMDSClass {
	return []IMDSClass{
		ClassOK, ClassConnectionRefused, ClassTimeout, ClassNoRoute, ClassHTTP400, ClassHTTP401,
		ClassHTTP403, ClassHTTP404, ClassHTTP429, ClassHTTP5xx, ClassProxy, ClassBadResponse,
	}
}

// IMDS probe stages (facts.imds.stage).
const (
	StageToken = "token"
	StageGet   = "get"
)

// IMDS versions (facts.imds.version).
const (
	VersionV1 = "v1"
	VersionV2 = "v2"
)
