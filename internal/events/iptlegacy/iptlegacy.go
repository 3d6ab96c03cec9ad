// Package iptlegacy is the watch's event source for legacy iptables tables, which announce
// no changes. Every legacy iptables command (iptables-legacy, -restore, ip6tables-legacy)
// takes the xtables lock while it changes a table and lets it go when done, so the lock
// file's close (inotify) is when to compare a checksum of the tables' rules (counters left
// out) with the previous one. A slow periodic comparison covers writers that skip the lock.
package iptlegacy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/facts/firewall"
	"golang.org/x/sys/unix"
)

// Every is how often the tables are compared without a lock event: rarely, since every
// wake-up of an idle watch costs (a 5 s poll took 0.2 s of CPU an hour), and writers that
// skip the lock are rare.
const Every = 30 * time.Second

// Source follows the legacy iptables tables of this network namespace.
type Source struct{}

// Name implements events.Source.
func (Source) Name() string { return "iptables-legacy" }

// Sections implements events.Source.
func (Source) Sections() []string { return []string{facts.ProbeFirewall} }

// Run implements events.Source; it ends when the tables can't be read.
func (Source) Run(ctx context.Context, changed func()) error {
	last, err := firewall.LegacyChecksums()
	if err != nil {
		return err
	}
	w, err := newLockWatch(firewall.XtablesLockPath())
	if err != nil {
		return err
	}
	defer w.f.Close()
	stop := context.AfterFunc(ctx, func() { _ = w.f.SetReadDeadline(time.Now()) })
	defer stop()
	closed := make(chan error, 1)
	go func() { closed <- w.run() }()
	poll := time.NewTicker(Every)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			<-closed
			return nil
		case err := <-closed:
			return err
		case <-w.released:
		case <-poll.C:
		}
		sums, err := firewall.LegacyChecksums()
		if err != nil {
			return err
		}
		if sums != last {
			last = sums
			changed()
		}
	}
}

// lockWatch follows the xtables lock file over inotify: its directory for the file's
// creation, the file for every close of it (a command that held the lock is done).
type lockWatch struct {
	f        *os.File
	fd       int
	lock     string
	released chan struct{}
}

func newLockWatch(lock string) (*lockWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("start inotify: %w", err)
	}
	w := &lockWatch{f: os.NewFile(uintptr(fd), "inotify"), fd: fd, lock: lock, released: make(chan struct{}, 1)}
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(lock), unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		w.f.Close()
		return nil, fmt.Errorf("watch %s: %w", filepath.Dir(lock), err)
	}
	if err := w.addLock(); err != nil {
		w.f.Close()
		return nil, err
	}
	return w, nil
}

// addLock watches the lock file for closes, if it is there.
func (w *lockWatch) addLock() error {
	_, err := unix.InotifyAddWatch(w.fd, w.lock, unix.IN_CLOSE_WRITE|unix.IN_CLOSE_NOWRITE)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("watch %s: %w", w.lock, err)
	}
	return nil
}

// run reads events until the file's deadline ends it (nil) or reading fails; a close of
// the lock, or a queue overflow, is a release.
func (w *lockWatch) run() error {
	buf := make([]byte, 4096)
	for {
		n, err := w.f.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read inotify events: %w", err)
		}
		release := false
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			switch {
			case ev.Mask&unix.IN_Q_OVERFLOW != 0, ev.Mask&(unix.IN_CLOSE_WRITE|unix.IN_CLOSE_NOWRITE) != 0:
				release = true
			case ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 && unix.ByteSliceToString(name) == filepath.Base(w.lock):
				if err := w.addLock(); err != nil {
					return err
				}
				release = true
			}
		}
		if release {
			select {
			case w.released <- struct{}{}:
			default:
			}
		}
	}
}
