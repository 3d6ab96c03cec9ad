// Package tree writes the file trees tests run on: policy directories, --root trees with
// /etc and /proc files captured from real systems.
package tree

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Write creates files under root, with the directories they need: each name maps to the
// file's content, or to "->TARGET" for a symlink to TARGET. Files are 0644, directories
// 0755.
func Write(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "->"); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
