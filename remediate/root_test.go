package remediate

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/imdsmend/imdsmend/tests/tree"
)

// TestApplyStaysInRoot: a tree whose backup file or backups directory links to a host
// file (here a file outside the temporary root) must not make apply overwrite it; the
// backup lands inside the tree, as the tree's own links say.
func TestApplyStaysInRoot(t *testing.T) {
	const orig = "http_proxy=http://p\n"
	for _, tt := range []struct{ name, link string }{
		{"backup file", "var/lib/imdsmend/backups/" + digest([]byte(orig))},
		{"backups directory", "var/lib/imdsmend/backups"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			outside := t.TempDir()
			victim := filepath.Join(outside, digest([]byte(orig)))
			if err := os.WriteFile(victim, []byte("host file\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			tree.Write(t, root, map[string]string{"etc/environment": orig})
			target := victim
			if filepath.Base(tt.link) == "backups" {
				target = outside
			}
			link := filepath.Join(root, tt.link)
			if err := os.MkdirAll(filepath.Dir(link), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			// The directory the link names, as the tree sees it.
			if err := os.MkdirAll(filepath.Join(root, outside), 0o700); err != nil {
				t.Fatal(err)
			}
			env := testEnv(root, false)
			ctx := context.Background()
			changes, err := NoProxy{}.Plan(ctx, env, filesArg("/etc/environment"))
			if err != nil || len(changes) != 1 {
				t.Fatal(changes, err)
			}
			if err := (NoProxy{}).Apply(ctx, env, changes[0]); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(victim); string(got) != "host file\n" {
				t.Errorf("the host file now holds %q; want it untouched", got)
			}
			if got, _ := os.ReadFile(filepath.Join(root, victim)); string(got) != orig {
				t.Errorf("the backup inside the tree holds %q; want the original", got)
			}
		})
	}
}
