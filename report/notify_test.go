package report

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// listen opens a unixgram socket as systemd does for NOTIFY_SOCKET and points the
// environment at it.
func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

func receive(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotifierSpeaksSdNotify(t *testing.T) {
	conn := listen(t)
	n := NewNotifier()
	if err := n.Ready("healthy;\n0 open findings"); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, conn); got != "READY=1\nSTATUS=healthy; 0 open findings" {
		t.Errorf("ready: %q", got)
	}
	if err := n.Status("proxy http://u:secret@p:3128"); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, conn); got != "STATUS=proxy http://u:REDACTED@p:3128" {
		t.Errorf("status not redacted: %q", got)
	}
	if err := n.Reloading(); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, conn); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("reloading: %q", got)
	}
	if err := n.Watchdog(); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, conn); got != daemon.SdNotifyWatchdog {
		t.Errorf("watchdog: %q", got)
	}
	if err := n.Stopping("stopping"); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, conn); got != "STOPPING=1\nSTATUS=stopping" {
		t.Errorf("stopping: %q", got)
	}
}

func TestNotifierWithoutManager(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := NewNotifier().Status("x"); err != nil {
		t.Errorf("Status without a manager: %v", err)
	}
}

func TestNotifierVanishedSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone"))
	if err := NewNotifier().Status("x"); err == nil || !strings.Contains(err.Error(), "sd_notify \"STATUS=x\"") {
		t.Errorf("want an error naming the message, got %v", err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "3000000")
	t.Setenv("WATCHDOG_PID", "")
	if got := WatchdogInterval(); got != 1500*time.Millisecond {
		t.Errorf("WatchdogInterval = %v, want 1.5s", got)
	}
	t.Setenv("WATCHDOG_PID", "1")
	if got := WatchdogInterval(); got != 0 {
		t.Errorf("watchdog meant for PID 1: %v, want 0", got)
	}
	t.Setenv("WATCHDOG_USEC", "")
	if got := WatchdogInterval(); got != 0 {
		t.Errorf("no watchdog: %v", got)
	}
}

func TestStatusLines(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	healthy := &Report{Command: "apply", Healthy: true, Actions: []Action{{Status: "applied"}, {Status: "applied"}, {Status: "skipped"}}}
	sick := sampleReport()
	tests := []struct{ got, want string }{
		{WatchStatusLine(healthy, now.Add(-3*time.Minute-10*time.Second), now), "healthy; 0 open findings; last fix 3m ago"},
		{WatchStatusLine(sick, time.Time{}, now), "NOT healthy; 1 open finding (imds_unreachable); 1 rule undecided; IMDS timeout; last fix never"},
		{RunStatusLine(healthy), "apply: healthy; 0 open findings; 2 fixes applied"},
		{RunStatusLine(sick), "apply: NOT healthy; 1 open finding (imds_unreachable); 1 rule undecided; IMDS timeout; 1 fix applied"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got  %q\nwant %q", tt.got, tt.want)
		}
	}
	for d, want := range map[time.Duration]string{45 * time.Second: "45s", 90 * time.Minute: "1h", 72 * time.Hour: "3d"} {
		if got := Ago(d); got != want {
			t.Errorf("Ago(%v) = %q, want %q", d, got, want)
		}
	}
}
