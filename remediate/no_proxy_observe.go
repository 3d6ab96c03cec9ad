package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/imdsmend/imdsmend/facts/proxy"
)

// Observe implements Fixer: the edit is in effect while the file holds the edited bytes,
// and not while it holds the original. Apply writes the backup (named by the original's
// digest) before the file, so from an intent alone the backup tells what the edited bytes
// are; Observe then completes the record (Backup, NewSHA256) as Apply would have, so undo
// can restore the original. Anything else is a file changed since: whether imdsmend's
// edit is in it can't be told.
func (NoProxy) Observe(_ context.Context, env *Env, c *Change) (bool, error) {
	var d noProxyData
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return false, fmt.Errorf("decode ledger record: %w", err)
	}
	current, _, err := proxy.ReadFileInRoot(env.Paths, d.Path, proxy.MaxConfigFile)
	if err != nil {
		return false, err
	}
	now := digest(current)
	if now == d.SHA256 {
		return false, nil
	}
	if d.Backup == "" {
		d.Backup = path.Join(env.Paths.StateDir, "backups", d.SHA256)
	}
	orig, err := env.Paths.ReadFile(d.Backup)
	if errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("%s changed, and no backup of it was made: not imdsmend's edit", d.Path)
	}
	if err != nil {
		return false, fmt.Errorf("read backup of %s: %w", d.Path, err)
	}
	if digest(orig) != d.SHA256 {
		return false, fmt.Errorf("the backup %s does not hold the original of %s (digest differs)", env.Paths.File(d.Backup), d.Path)
	}
	updated, err := applyInserts(orig, d.Inserts)
	if err != nil {
		return false, err
	}
	if now != digest(updated) {
		return false, fmt.Errorf("%s changed since imdsmend planned its edit", d.Path)
	}
	d.NewSHA256 = now
	c.Data, err = json.Marshal(d)
	return true, err
}
