package facts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/imdsmend/imdsmend/internal/paths"
	"golang.org/x/sys/unix"
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

// lockXtables takes the xtables lock, retrying until wait has passed. iptables-legacy-save
// does not lock; imdsmend does, as `iptables -S -w` would, so it never reads the tables
// halfway through another tool's multi-table update, and a lock held too long is
// reported rather than guessed around.
func lockXtables(ctx context.Context, wait time.Duration) (unlock func(), err error) {
	path := XtablesLockPath()
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open xtables lock %s: %w", path, err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w: %s stayed locked for %s; find the holder with `fuser -v %s` and run again", ErrXtablesLocked, path, wait, path)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for xtables lock %s: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
