package firewall

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/imdsmend/imdsmend/internal/flock"
	"github.com/imdsmend/imdsmend/internal/paths"
)

// XtablesLockWait bounds how long imdsmend waits for the xtables lock, reading or writing
// (`iptables -w` uses the same lock).
const XtablesLockWait = time.Second

// XtablesLockPath is the lock legacy iptables takes: $XTABLES_LOCKFILE, as iptables
// itself reads it, or /run/xtables.lock.
func XtablesLockPath() string {
	if p := os.Getenv("XTABLES_LOCKFILE"); p != "" {
		return p
	}
	return paths.XtablesLock
}

// ErrXtablesLocked says another program held the xtables lock for the whole wait.
var ErrXtablesLocked = errors.New("xtables lock held by another program")

// lockXtables takes the xtables lock, waiting at most wait. iptables-legacy-save does not
// lock; imdsmend does, as `iptables -S -w` would, so it never reads the tables halfway
// through another tool's multi-table update, and a lock held too long is reported rather
// than guessed around.
func lockXtables(ctx context.Context, wait time.Duration) (unlock func(), err error) {
	path := XtablesLockPath()
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	unlock, err = flock.Lock(wctx, path)
	switch {
	case err == nil:
		return unlock, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("wait for xtables lock %s: %w", path, ctx.Err())
	case errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("%w: %s stayed locked for %s; find the holder with `fuser -v %s` and run again", ErrXtablesLocked, path, wait, path)
	}
	return nil, err
}
