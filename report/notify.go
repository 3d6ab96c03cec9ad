package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/imdsmend/imdsmend/internal/redact"
	"github.com/imdsmend/imdsmend/internal/types"
)

// Notifier speaks sd_notify to the service manager named by NOTIFY_SOCKET. Without it
// every call does nothing, so commands call it unconditionally.
type Notifier struct {
	send func(state string) (bool, error)
}

// NewNotifier returns a Notifier for this process's NOTIFY_SOCKET.
func NewNotifier() *Notifier {
	return &Notifier{send: func(state string) (bool, error) { return daemon.SdNotify(false, state) }}
}

// Status sets the line `systemctl status` shows.
func (n *Notifier) Status(line string) error { return n.notify("STATUS=" + oneLine(line)) }

// Ready says start-up (or a reload) is finished, with the current status line.
func (n *Notifier) Ready(line string) error {
	return n.notify(daemon.SdNotifyReady + "\nSTATUS=" + oneLine(line))
}

// Reloading says the policy is being reloaded; Ready must follow. MONOTONIC_USEC lets a
// Type=notify-reload manager match the two.
func (n *Notifier) Reloading() error {
	return n.notify(daemon.SdNotifyReloading + "\n" + strings.TrimSuffix(daemon.SdNotifyMonotonicUsec(), "\n"))
}

// Stopping says the service is shutting down.
func (n *Notifier) Stopping(line string) error {
	return n.notify(daemon.SdNotifyStopping + "\nSTATUS=" + oneLine(line))
}

// Watchdog tells the manager the service is alive.
func (n *Notifier) Watchdog() error { return n.notify(daemon.SdNotifyWatchdog) }

func (n *Notifier) notify(state string) error {
	if _, err := n.send(state); err != nil {
		return fmt.Errorf("sd_notify %q: %w", strings.SplitN(state, "\n", 2)[0], err)
	}
	return nil
}

// WatchdogInterval is how often to send WATCHDOG=1: half of WatchdogSec, as
// sd_watchdog_enabled(3) advises; 0 when the manager set no watchdog for this process.
func WatchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return 0
	}
	return d / 2
}

func oneLine(s string) string { return redact.String(strings.ReplaceAll(s, "\n", " ")) }

// StatusLine says a report's state in one line: "healthy; 0 open findings; IMDS ok".
func StatusLine(rep *Report) string {
	var b strings.Builder
	if rep.Healthy {
		b.WriteString("healthy")
	} else {
		b.WriteString("NOT healthy")
	}
	fmt.Fprintf(&b, "; %d open finding%s", len(rep.Findings), plural(len(rep.Findings)))
	if len(rep.Findings) > 0 {
		rules := make([]string, 0, len(rep.Findings))
		for _, f := range rep.Findings {
			rules = append(rules, f.Rule)
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(rules, ", "))
	}
	if n := len(rep.Unknown); n > 0 {
		fmt.Fprintf(&b, "; %d rule%s undecided", n, plural(n))
	}
	if rep.IMDS != nil {
		fmt.Fprintf(&b, "; IMDS %s", rep.IMDS.Class)
	}
	return b.String()
}

// RunStatusLine is a one-shot command's status: "apply: healthy; …; 2 fixes applied".
func RunStatusLine(rep *Report) string {
	return fmt.Sprintf("%s: %s; %d fix%s applied", rep.Command, StatusLine(rep), Applied(rep), pluralES(Applied(rep)))
}

// WatchStatusLine is watch's status: "healthy; 0 open findings; last fix 3m ago".
func WatchStatusLine(rep *Report, lastFix, now time.Time) string {
	last := "never"
	if !lastFix.IsZero() {
		last = Ago(now.Sub(lastFix)) + " ago"
	}
	return fmt.Sprintf("%s; last fix %s", StatusLine(rep), last)
}

// Applied counts the report's applied actions.
func Applied(rep *Report) int {
	n := 0
	for _, a := range rep.Actions {
		if a.Status == types.StatusApplied {
			n++
		}
	}
	return n
}

// Ago rounds a duration the way people say it: 45s, 3m, 5h, 2d.
func Ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func pluralES(n int) string {
	if n == 1 {
		return ""
	}
	return "es"
}
