package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/internal/types"
)

// TestWriteTextMediated: the IMDS line says when the probe took systemd-imdsd's path, so a
// reader does not take a prohibited direct path for the one that was checked.
func TestWriteTextMediated(t *testing.T) {
	tests := []struct {
		name string
		imds types.IMDS
		want string
	}{
		{"direct", types.IMDS{Endpoint: "http://169.254.169.254", Reachable: true, Version: "v2", Class: "ok"},
			"IMDS http://169.254.169.254: reachable (v2), class ok,"},
		{"along the daemon's path", types.IMDS{Endpoint: "http://169.254.169.254", Reachable: true, Version: "v2", Class: "ok", MediatedBy: "systemd-imdsd", Marked: true},
			"IMDS http://169.254.169.254: reachable (v2) along systemd-imdsd's path, class ok,"},
		{"failing along the daemon's path", types.IMDS{Endpoint: "http://169.254.169.254", Class: "timeout", MediatedBy: "systemd-imdsd", Marked: true},
			"IMDS http://169.254.169.254: unreachable along systemd-imdsd's path, class timeout,"},
		{"mediated, path not taken", types.IMDS{Endpoint: "http://169.254.169.254", Class: "no_route", MediatedBy: "systemd-imdsd"},
			"IMDS http://169.254.169.254: unreachable, class no_route,"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteText(&buf, &Report{Command: "check", IMDS: &tt.imds}); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(buf.String(), tt.want) {
				t.Errorf("text report lacks %q:\n%s", tt.want, buf.String())
			}
		})
	}
}
