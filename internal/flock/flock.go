// Package flock takes exclusive advisory file locks that give up when a context ends: the
// run lock and the xtables lock are both taken this way.
package flock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// poll is how often a held lock is tried again.
const poll = 20 * time.Millisecond

// Lock takes an exclusive flock on the file at path, creating the file (mode 0600) if it
// is missing. It polls instead of blocking, because a blocked flock can't be cancelled,
// and gives up with ctx.Err() itself once ctx ends. The returned function releases the
// lock.
func Lock(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}
