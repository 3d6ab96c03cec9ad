package paths

import "testing"

func TestFile(t *testing.T) {
	tests := []struct {
		root, abs, want string
	}{
		{"/", "/etc/environment", "/etc/environment"},
		{"", "/etc/environment", "/etc/environment"},
		{"/tmp/t", "/etc/environment", "/tmp/t/etc/environment"},
		{"/tmp/t/", "/var/lib/imdsmend/../x", "/tmp/t/var/lib/x"},
		// A path cannot climb out of the root.
		{"/tmp/t", "/../../etc/shadow", "/tmp/t/etc/shadow"},
	}
	for _, tt := range tests {
		if got := New(tt.root).File(tt.abs); got != tt.want {
			t.Errorf("New(%q).File(%q) = %q, want %q", tt.root, tt.abs, got, tt.want)
		}
	}
	p := New("/r")
	p.StateDir = "/state"
	if got, want := p.Ledger(), "/r/state/ledger.jsonl"; got != want {
		t.Errorf("Ledger() = %q, want %q", got, want)
	}
	// The run lock is the host's, whatever the root: runs under different roots still
	// change the same firewall and routes.
	if got, want := p.Lock(), "/run/imdsmend.lock"; got != want {
		t.Errorf("Lock() = %q, want %q", got, want)
	}
}
