package main

import "testing"

func TestMetricsPath(t *testing.T) {
	tests := []struct{ root, file, want string }{
		{"/", "/var/lib/node_exporter/imdsmend.prom", "/var/lib/node_exporter/imdsmend.prom"},
		{"/", "imdsmend.prom", "imdsmend.prom"},
		{"/mnt/image", "/var/lib/node_exporter/imdsmend.prom", "/mnt/image/var/lib/node_exporter/imdsmend.prom"},
		{"/mnt/image", "/../../etc/x.prom", "/mnt/image/etc/x.prom"},
		{"/mnt/image", "", ""},
	}
	for _, tt := range tests {
		g := &globalFlags{root: tt.root, metricsFile: tt.file}
		if got := g.metricsPath(); got != tt.want {
			t.Errorf("--root %s --metrics-file %q: %q, want %q", tt.root, tt.file, got, tt.want)
		}
	}
}
