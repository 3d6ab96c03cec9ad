package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/imdsmend/imdsmend/internal/redact"
	"github.com/imdsmend/imdsmend/internal/types"
)

// Entry is one journal entry: an event with a fixed MESSAGE_ID and its fields.
type Entry struct {
	MessageID string
	Priority  journal.Priority
	Message   string
	Fields    map[string]string
}

// Priorities of findings by severity; actions and summaries are in actionKinds and
// summaryEntry. docs/operating.md lists them all.
func findingPriority(severity types.Severity) journal.Priority {
	switch severity {
	case types.SeverityCritical:
		return journal.PriCrit
	case types.SeverityWarning:
		return journal.PriWarning
	}
	return journal.PriInfo
}

// actionKinds gives each action status its MESSAGE_ID and PRIORITY: a failed fix is an
// error, a change made or reverted is notable, the rest is information.
var actionKinds = map[types.Status]struct {
	id   string
	prio journal.Priority
}{
	types.StatusPlanned:   {MessageActionPlanned, journal.PriInfo},
	types.StatusApplied:   {MessageActionApplied, journal.PriNotice},
	types.StatusUnchanged: {MessageActionUnchanged, journal.PriInfo},
	types.StatusSkipped:   {MessageActionSkipped, journal.PriInfo},
	types.StatusFailed:    {MessageActionFailed, journal.PriErr},
	types.StatusReverted:  {MessageActionReverted, journal.PriNotice},
	// An interrupted change found not made: nothing changed.
	types.StatusNotApplied: {MessageActionUnchanged, journal.PriNotice},
}

// RunEntries are the entries of a one-shot run: every open finding, every action, and the
// verdict.
func RunEntries(rep *Report) []Entry {
	base := map[string]string{FieldRunID: rep.RunID, FieldCommand: rep.Command}
	var out []Entry
	for _, f := range rep.Findings {
		out = append(out, findingEntry(MessageFinding, "finding", f, base))
	}
	for _, a := range rep.Actions {
		out = append(out, actionEntry(a, base))
	}
	return append(out, summaryEntry(rep, base))
}

func findingEntry(id, verb string, f Finding, base map[string]string) Entry {
	fields := cloneFields(base)
	fields[FieldRule] = f.Rule
	fields[FieldSeverity] = string(f.Severity)
	if f.Hint != "" {
		fields[FieldHint] = f.Hint
	}
	if ev := compactJSON(f.Evidence); ev != "" {
		fields[FieldEvidence] = ev
	}
	prio := findingPriority(f.Severity)
	if id == MessageFindingClosed {
		prio = journal.PriNotice
	}
	return Entry{
		MessageID: id,
		Priority:  prio,
		Message:   fmt.Sprintf("%s %s (%s): %s", verb, f.Rule, f.Severity, f.Summary),
		Fields:    fields,
	}
}

func actionEntry(a Action, base map[string]string) Entry {
	k, ok := actionKinds[a.Status]
	if !ok {
		k = actionKinds[types.StatusFailed]
	}
	fields := cloneFields(base)
	fields[FieldRule] = a.Rule
	fields[FieldAction] = a.Kind
	fields[FieldActionID] = a.ID
	fields[FieldTarget] = a.Target
	fields[FieldStatus] = string(a.Status)
	if a.Detail != "" {
		fields[FieldDetail] = a.Detail
	}
	if a.Error != "" {
		fields[FieldError] = a.Error
	}
	if a.InterruptedRun != "" {
		fields[FieldInterruptedRun] = a.InterruptedRun
	}
	msg := fmt.Sprintf("%s %s %s for %s", a.Status, a.Kind, a.Target, a.Rule)
	if a.Detail != "" {
		msg += ": " + a.Detail
	}
	if a.Error != "" {
		msg += " (" + a.Error + ")"
	}
	if a.InterruptedRun != "" {
		msg += " [found after interrupted run " + a.InterruptedRun + "]"
	}
	return Entry{MessageID: k.id, Priority: k.prio, Message: msg, Fields: fields}
}

func summaryEntry(rep *Report, base map[string]string) Entry {
	fields := cloneFields(base)
	fields[FieldHealthy] = strconv.FormatBool(rep.Healthy)
	fields[FieldFindings] = strconv.Itoa(len(rep.Findings))
	fields[FieldActions] = strconv.Itoa(len(rep.Actions))
	fields[FieldDurationMS] = strconv.FormatFloat(rep.DurationMS, 'f', 1, 64)
	var unknown []string
	for _, u := range rep.Unknown {
		unknown = append(unknown, u.Rule)
	}
	if len(unknown) > 0 {
		fields[FieldUnknown] = strings.Join(unknown, ",")
	}
	imds := "IMDS not probed"
	if rep.IMDS != nil {
		fields[FieldIMDSClass] = string(rep.IMDS.Class)
		imds = "IMDS " + string(rep.IMDS.Class)
	}
	verdict, prio := "healthy", journal.PriInfo
	if !rep.Healthy {
		verdict, prio = "NOT healthy", journal.PriWarning
	}
	msg := fmt.Sprintf("%s: %s, %d open finding(s), %s, %s, %.1f ms",
		rep.Command, verdict, len(rep.Findings), countActions(rep.Actions), imds, rep.DurationMS)
	if len(unknown) > 0 {
		msg += fmt.Sprintf(", %d rule(s) undecided", len(unknown))
	}
	return Entry{MessageID: MessageRunSummary, Priority: prio, Message: msg, Fields: fields}
}

// PassFailedEntry records a watch pass that ended without a report.
func PassFailedEntry(err error, trigger string) Entry {
	return Entry{
		MessageID: MessagePassFailed,
		Priority:  journal.PriErr,
		Message:   "watch pass failed: " + err.Error(),
		Fields:    map[string]string{FieldCommand: "watch", FieldTrigger: trigger, FieldError: err.Error()},
	}
}

// SourceFailedEntry records that one of watch's event sources could not start or stopped:
// what it watches is seen at the interval from then on.
func SourceFailedEntry(source string, err error, interval time.Duration) Entry {
	return Entry{
		MessageID: MessageSourceFailed,
		Priority:  journal.PriWarning,
		Message:   fmt.Sprintf("%v; its changes are seen at the interval (%s) instead", err, interval),
		Fields:    map[string]string{FieldCommand: "watch", FieldTrigger: source, FieldError: err.Error()},
	}
}

// PolicyReloadedEntry records that watch took a new policy.
func PolicyReloadedEntry(policy string, rules int, interval time.Duration) Entry {
	return Entry{
		MessageID: MessagePolicyReloaded,
		Priority:  journal.PriNotice,
		Message:   fmt.Sprintf("policy reloaded from %s: %d rule(s), interval %s", policy, rules, interval),
		Fields:    map[string]string{FieldCommand: "watch", FieldPolicy: policy},
	}
}

// PolicyRejectedEntry records that watch refused a new policy; problems are one-line
// diagnostics ("file:line,col: summary; detail").
func PolicyRejectedEntry(policy string, problems []string) Entry {
	return Entry{
		MessageID: MessagePolicyRejected,
		Priority:  journal.PriErr,
		Message:   fmt.Sprintf("policy reload rejected, keeping the previous policy: %s", strings.Join(problems, "\n")),
		Fields:    map[string]string{FieldCommand: "watch", FieldPolicy: policy, FieldError: strings.Join(problems, "\n")},
	}
}

// countActions says "3 action(s) (2 applied, 1 failed)".
func countActions(actions []Action) string {
	if len(actions) == 0 {
		return "0 actions"
	}
	by := map[types.Status]int{}
	for _, a := range actions {
		by[a.Status]++
	}
	var parts []string
	for _, s := range slices.Sorted(maps.Keys(by)) {
		parts = append(parts, fmt.Sprintf("%d %s", by[s], s))
	}
	return fmt.Sprintf("%d action(s) (%s)", len(actions), strings.Join(parts, ", "))
}

// cloneFields copies the fields every entry of a run shares, so each entry can add its own.
func cloneFields(base map[string]string) map[string]string {
	m := make(map[string]string, len(base)+8)
	maps.Copy(m, base)
	return m
}

func compactJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	if s := b.String(); s != "{}" && s != "null" {
		return s
	}
	return ""
}

// Journal writes entries to journald through its native socket or, when there is none or
// it fails, as text lines to a writer (stderr). Every value is redacted first.
type Journal struct {
	send   func(message string, priority journal.Priority, vars map[string]string) error
	native bool
	// stream is set when the text writer is itself the journal's stream (JOURNAL_STREAM):
	// text lines then carry a <N> priority prefix journald understands.
	stream  bool
	timeout time.Duration

	mu sync.Mutex
	w  io.Writer
	// blocked is set while a send that outlived the timeout is still stuck in the kernel;
	// later entries go to text until it returns, so a stalled journald can't hang a run.
	blocked   atomic.Bool
	lastError string
}

// NewJournal returns a Journal that uses journald when its socket answers and w otherwise.
func NewJournal(w io.Writer) *Journal {
	stream, _ := journal.StderrIsJournalStream()
	return &Journal{send: journal.Send, native: journal.Enabled(), stream: stream, timeout: 2 * time.Second, w: w}
}

// Write records entries. It never fails: what journald does not take goes to text, and
// the reason is written once as a text line.
func (j *Journal) Write(entries []Entry) {
	for _, e := range entries {
		vars, bad := j.vars(e)
		if len(bad) > 0 {
			j.note(fmt.Sprintf("journal field name(s) %s invalid, not sent", strings.Join(bad, ", ")))
		}
		msg := redact.String(e.Message)
		if j.native {
			err := j.sendBounded(msg, e.Priority, vars)
			if err == nil {
				continue
			}
			j.note("journald did not take an entry, writing to stderr: " + err.Error())
		}
		j.text(msg, e.Priority, vars)
	}
}

func (j *Journal) vars(e Entry) (map[string]string, []string) {
	vars := make(map[string]string, len(e.Fields)+2)
	var bad []string
	for k, v := range e.Fields {
		if err := validFieldName(k); err != nil {
			bad = append(bad, strconv.Quote(k))
			continue
		}
		vars[k] = redact.String(v)
	}
	vars[fieldMessageID] = e.MessageID
	vars[fieldSyslogIdentifier] = SyslogIdentifier
	slices.Sort(bad)
	return vars, bad
}

var errBlocked = errors.New("an earlier entry is still waiting for journald")

// sendBounded sends one entry, giving up after j.timeout: journald's socket has a short
// queue (net.unix.max_dgram_qlen) and a stopped journald would block the sender forever.
func (j *Journal) sendBounded(msg string, prio journal.Priority, vars map[string]string) error {
	if j.blocked.Load() {
		return errBlocked
	}
	done := make(chan error, 1)
	go func() { done <- j.send(msg, prio, vars) }()
	timer := time.NewTimer(j.timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		j.blocked.Store(true)
		go func() { <-done; j.blocked.Store(false) }()
		return fmt.Errorf("journald did not take the entry within %s", j.timeout)
	}
}

// note writes a problem with the journal once per distinct message.
func (j *Journal) note(msg string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if msg == j.lastError {
		return
	}
	j.lastError = msg
	fmt.Fprintf(j.w, "imdsmend: %s\n", msg)
}

// textFields are shown in text lines, in this order, by short name.
var textFields = []struct{ name, short string }{
	{FieldRule, "rule"}, {FieldSeverity, "severity"}, {FieldAction, "action"},
	{FieldActionID, "id"}, {FieldTarget, "target"}, {FieldStatus, "status"},
	{FieldError, "error"}, {FieldHint, "next"}, {FieldUnknown, "undecided"}, {FieldRunID, "run"},
}

var priorityNames = []string{"EMERG", "ALERT", "CRIT", "ERR", "WARNING", "NOTICE", "INFO", "DEBUG"}

// text writes one readable line: "imdsmend: WARNING message [rule=… run=…]".
func (j *Journal) text(msg string, prio journal.Priority, vars map[string]string) {
	var b strings.Builder
	if j.stream {
		fmt.Fprintf(&b, "<%d>", prio)
	}
	name := "INFO"
	if int(prio) < len(priorityNames) {
		name = priorityNames[prio]
	}
	fmt.Fprintf(&b, "imdsmend: %s %s", name, strings.ReplaceAll(msg, "\n", "; "))
	var kv []string
	for _, f := range textFields {
		if v, ok := vars[f.name]; ok && v != "" {
			kv = append(kv, f.short+"="+strconv.Quote(v))
		}
	}
	if len(kv) > 0 {
		fmt.Fprintf(&b, " [%s]", strings.Join(kv, " "))
	}
	b.WriteByte('\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	_, _ = io.WriteString(j.w, b.String())
}

// validFieldName checks what journald accepts: upper-case letters, digits and '_', not
// starting with '_' (reserved for trusted fields) and at most 64 characters.
func validFieldName(name string) error {
	switch {
	case name == "":
		return errors.New("empty field name")
	case len(name) > 64:
		return errors.New("field name longer than 64 characters")
	case name[0] == '_':
		return errors.New("field name starts with '_'")
	case name[0] >= '0' && name[0] <= '9':
		return errors.New("field name starts with a digit")
	}
	for _, c := range name {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return fmt.Errorf("field name has %q", c)
		}
	}
	return nil
}
