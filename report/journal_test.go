package report

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/internal/types"
)

func sampleReport() *Report {
	return &Report{
		Schema: Schema, Command: "apply", RunID: "0011223344556677", Healthy: false,
		IMDS: &types.IMDS{Class: "timeout"},
		Findings: []Finding{{
			Rule: "imds_unreachable", Severity: "critical", Summary: "IMDS at http://169.254.169.254 is unreachable: timeout",
			Hint: "look for a firewall rule", Evidence: json.RawMessage(`{ "class": "timeout" }`),
		}},
		Actions: []Action{
			{ID: "firewall_delete-0a1b2c3d4e", Rule: "firewall_blocks_imds", Kind: "firewall_delete", Target: "filter/OUTPUT -d 169.254.169.254/32 -j DROP", Status: "applied", Detail: "deleted the rule"},
			{ID: "no_proxy-99aa88bb77", Rule: "proxy_leak", Kind: "no_proxy", Target: "/etc/environment", Status: "failed", Error: "read-only file system"},
		},
		Unknown:    []Unknown{{Rule: "hop_limit_too_low", Reason: "facts.ec2 is null"}},
		DurationMS: 12.34,
	}
}

func TestRunEntries(t *testing.T) {
	base := map[string]string{FieldRunID: "0011223344556677", FieldCommand: "apply"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	want := []Entry{
		{MessageID: MessageFinding, Priority: journal.PriCrit,
			Message: "finding imds_unreachable (critical): IMDS at http://169.254.169.254 is unreachable: timeout",
			Fields: with(map[string]string{FieldRule: "imds_unreachable", FieldSeverity: "critical",
				FieldHint: "look for a firewall rule", FieldEvidence: `{"class":"timeout"}`})},
		{MessageID: MessageActionApplied, Priority: journal.PriNotice,
			Message: "applied firewall_delete filter/OUTPUT -d 169.254.169.254/32 -j DROP for firewall_blocks_imds: deleted the rule",
			Fields: with(map[string]string{FieldRule: "firewall_blocks_imds", FieldAction: "firewall_delete",
				FieldActionID: "firewall_delete-0a1b2c3d4e", FieldTarget: "filter/OUTPUT -d 169.254.169.254/32 -j DROP",
				FieldStatus: "applied", FieldDetail: "deleted the rule"})},
		{MessageID: MessageActionFailed, Priority: journal.PriErr,
			Message: "failed no_proxy /etc/environment for proxy_leak (read-only file system)",
			Fields: with(map[string]string{FieldRule: "proxy_leak", FieldAction: "no_proxy", FieldActionID: "no_proxy-99aa88bb77",
				FieldTarget: "/etc/environment", FieldStatus: "failed", FieldError: "read-only file system"})},
		{MessageID: MessageRunSummary, Priority: journal.PriWarning,
			Message: "apply: NOT healthy, 1 open finding(s), 2 action(s) (1 applied, 1 failed), IMDS timeout, 12.3 ms, 1 rule(s) undecided",
			Fields: with(map[string]string{FieldHealthy: "false", FieldFindings: "1", FieldActions: "2", FieldDurationMS: "12.3",
				FieldUnknown: "hop_limit_too_low", FieldIMDSClass: "timeout"})},
	}
	if diff := cmp.Diff(want, RunEntries(sampleReport())); diff != "" {
		t.Errorf("RunEntries (-want +got):\n%s", diff)
	}
}

func TestPriorities(t *testing.T) {
	tests := []struct {
		entry Entry
		want  journal.Priority
	}{
		{findingEntry(MessageFinding, "finding", Finding{Severity: "critical"}, nil), journal.PriCrit},
		{findingEntry(MessageFinding, "finding", Finding{Severity: "warning"}, nil), journal.PriWarning},
		{findingEntry(MessageFinding, "finding", Finding{Severity: "info"}, nil), journal.PriInfo},
		{findingEntry(MessageFindingClosed, "closed", Finding{Severity: "critical"}, nil), journal.PriNotice},
		{actionEntry(Action{Status: "planned"}, nil), journal.PriInfo},
		{actionEntry(Action{Status: "skipped"}, nil), journal.PriInfo},
		{actionEntry(Action{Status: "unchanged"}, nil), journal.PriInfo},
		{actionEntry(Action{Status: "reverted"}, nil), journal.PriNotice},
		{actionEntry(Action{Status: "bogus"}, nil), journal.PriErr},
		{summaryEntry(&Report{Healthy: true}, nil), journal.PriInfo},
	}
	for _, tt := range tests {
		if tt.entry.Priority != tt.want {
			t.Errorf("%s %q: priority %d, want %d", MessageIDs[tt.entry.MessageID], tt.entry.Message, tt.entry.Priority, tt.want)
		}
	}
}

// sent is what a fake journald received.
type sent struct {
	msg  string
	prio journal.Priority
	vars map[string]string
}

type fakeJournald struct {
	mu   sync.Mutex
	got  []sent
	err  error
	gate chan struct{} // when set, sends wait for it
}

func (f *fakeJournald) send(msg string, prio journal.Priority, vars map[string]string) error {
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.got = append(f.got, sent{msg, prio, vars})
	return nil
}

func TestJournalNativeRedactsAndValidates(t *testing.T) {
	const token = "AQAEAFo3b8ZQ8NdIIKFUMN0bX6mEmLaaYaT9BLMlsm5-v0Wlc8kBQg=="
	fj := &fakeJournald{}
	var text strings.Builder
	j := &Journal{send: fj.send, native: true, timeout: time.Second, w: &text}
	j.Write([]Entry{{
		MessageID: MessageFinding, Priority: journal.PriCrit,
		Message: "proxy http://bob:hunter2@proxy:3128 and token " + token,
		Fields:  map[string]string{FieldRule: "proxy_leak", FieldEvidence: `{"url":"http://bob:hunter2@proxy:3128"}`, "bad-name": "x", "_PID": "1"},
	}})
	if len(fj.got) != 1 {
		t.Fatalf("journald got %d entries, want 1", len(fj.got))
	}
	got := fj.got[0]
	want := map[string]string{
		"MESSAGE_ID": MessageFinding, "SYSLOG_IDENTIFIER": "imdsmend",
		FieldRule: "proxy_leak", FieldEvidence: `{"url":"http://bob:REDACTED@proxy:3128"}`,
	}
	if diff := cmp.Diff(want, got.vars); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	if wantMsg := "proxy http://bob:REDACTED@proxy:3128 and token REDACTED"; got.msg != wantMsg {
		t.Errorf("message %q, want %q", got.msg, wantMsg)
	}
	if got.prio != journal.PriCrit {
		t.Errorf("priority %d, want %d", got.prio, journal.PriCrit)
	}
	if want := "imdsmend: journal field name(s) \"_PID\", \"bad-name\" invalid, not sent\n"; text.String() != want {
		t.Errorf("note %q, want %q", text.String(), want)
	}
}

func TestJournalFallsBackToText(t *testing.T) {
	fj := &fakeJournald{err: errors.New("dial unixgram /run/systemd/journal/socket: connect: no such file or directory")}
	var text strings.Builder
	j := &Journal{send: fj.send, native: true, timeout: time.Second, w: &text}
	j.Write(RunEntries(sampleReport()))
	lines := strings.Split(strings.TrimSpace(text.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("got %d lines, want a note and 4 entries:\n%s", len(lines), text.String())
	}
	if !strings.Contains(lines[0], "journald did not take an entry") || !strings.Contains(lines[0], "no such file") {
		t.Errorf("first line should say why: %q", lines[0])
	}
	wantPrefixes := []string{"imdsmend: CRIT finding imds_unreachable", "imdsmend: NOTICE applied firewall_delete", "imdsmend: ERR failed no_proxy", "imdsmend: WARNING apply: NOT healthy"}
	for i, p := range wantPrefixes {
		if !strings.HasPrefix(lines[i+1], p) {
			t.Errorf("line %d = %q, want prefix %q", i+1, lines[i+1], p)
		}
	}
	if !strings.Contains(lines[3], `error="read-only file system"`) || !strings.Contains(lines[3], `run="0011223344556677"`) {
		t.Errorf("failed action line lacks its fields: %q", lines[3])
	}
}

func TestJournalTextStreamPrefix(t *testing.T) {
	var text strings.Builder
	j := &Journal{w: &text, stream: true}
	j.Write([]Entry{{MessageID: MessageFindingClosed, Priority: journal.PriNotice, Message: "two\nlines", Fields: map[string]string{FieldRule: "r"}}})
	if want := "<5>imdsmend: NOTICE two; lines [rule=\"r\"]\n"; text.String() != want {
		t.Errorf("got %q, want %q", text.String(), want)
	}
}

func TestJournalStalledJournaldDoesNotHang(t *testing.T) {
	fj := &fakeJournald{gate: make(chan struct{})}
	var text strings.Builder
	j := &Journal{send: fj.send, native: true, timeout: 20 * time.Millisecond, w: &text}
	done := make(chan struct{})
	go func() {
		j.Write(RunEntries(sampleReport()))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Write blocked on a stalled journald")
	}
	// The first entry timed out; the rest did not wait for it again.
	if n := strings.Count(text.String(), "\nimdsmend: ") + 1; n < 5 {
		t.Errorf("want a note and 4 text entries, got:\n%s", text.String())
	}
	close(fj.gate) // journald wakes up: the stuck send completes and native sending resumes
	deadline := time.Now().Add(10 * time.Second)
	for j.blocked.Load() {
		if time.Now().After(deadline) {
			t.Fatal("journal still marked blocked after the send returned")
		}
		time.Sleep(time.Millisecond)
	}
	before := len(fj.got)
	j.Write([]Entry{summaryEntry(sampleReport(), nil)})
	if len(fj.got) != before+1 {
		t.Errorf("native sending did not resume: %d entries, want %d", len(fj.got), before+1)
	}
}

// BenchmarkJournalWrite measures a run's entries through validation, redaction and a
// journald that takes them at once.
func BenchmarkJournalWrite(b *testing.B) {
	j := &Journal{send: func(string, journal.Priority, map[string]string) error { return nil }, native: true, timeout: time.Second, w: io.Discard}
	entries := RunEntries(sampleReport())
	for b.Loop() {
		j.Write(entries)
	}
}
