package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnitsVerify runs systemd-analyze verify over the shipped units, with ExecStart
// pointing at the binary under test, so a typo in a directive fails here and not on a
// fleet's first boot.
func TestUnitsVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd)")
	}
	src := filepath.Join(moduleRoot(t), "packaging")
	dir := t.TempDir()
	var units []string
	for _, pattern := range []string{"*.service", "*.timer"} {
		matches, err := filepath.Glob(filepath.Join(src, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range matches {
			data, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			text := strings.ReplaceAll(string(data), "/usr/bin/imdsmend", bins.Imdsmend)
			dst := filepath.Join(dir, filepath.Base(m))
			if err := os.WriteFile(dst, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			units = append(units, dst)
		}
	}
	for _, want := range []string{"imdsmend-boot.service", "imdsmend.service", "imdsmend.timer", "imdsmend-watch.service"} {
		if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
			t.Errorf("packaging/%s is missing", want)
		}
	}
	cmd := exec.Command("systemd-analyze", append([]string{"verify", "--man=no"}, units...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
