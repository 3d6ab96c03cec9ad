// Package proxyfiles is the watch's event source for proxy settings in files: it follows,
// over inotify, every file and directory the proxy facts look at (proxy.Config.Looked:
// /etc/environment, /etc/profile.d, systemd's manager and unit drop-ins, docker's
// daemon.json), and the directories that hold them, so a file created where none was
// counts too. Processes' environments, which inotify can't follow, are read again by the
// passes the other sources and the interval bring.
package proxyfiles

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/facts/proxy"
	"github.com/imdsmend/imdsmend/internal/paths"
)

// Source watches the proxy configuration files under Paths.Root.
type Source struct {
	Paths paths.Paths
}

// Name implements events.Source.
func (Source) Name() string { return "proxy-files" }

// Sections implements events.Source.
func (Source) Sections() []string { return []string{facts.ProbeProxy} }

// Run implements events.Source. An inotify queue overflow counts as a change.
func (s Source) Run(ctx context.Context, changed func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("start inotify: %w", err)
	}
	defer w.Close()
	looked, err := s.follow(w)
	if err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("inotify events ended")
			}
			if !concerns(looked, ev.Name) {
				continue
			}
			changed()
			// A directory created, or a unit's drop-in directory new: follow it too.
			if looked, err = s.follow(w); err != nil {
				return err
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("inotify events ended")
			}
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				return fmt.Errorf("inotify: %w", err)
			}
			changed()
		}
	}
}

// follow watches every looked-at path that is a directory and the nearest existing
// directory above each, and returns the looked-at paths as on this host.
func (s Source) follow(w *fsnotify.Watcher) ([]string, error) {
	var looked []string
	for _, sys := range proxy.LoadConfig(s.Paths).Looked {
		host := s.Paths.File(sys)
		looked = append(looked, host)
		if st, err := os.Stat(host); err == nil && st.IsDir() {
			if err := w.Add(host); err != nil {
				return nil, fmt.Errorf("watch %s: %w", host, err)
			}
		}
		dir := filepath.Dir(host)
		for {
			if st, err := os.Stat(dir); err == nil && st.IsDir() {
				break
			}
			if up := filepath.Dir(dir); up != dir {
				dir = up
			} else {
				break
			}
		}
		if err := w.Add(dir); err != nil {
			return nil, fmt.Errorf("watch %s: %w", dir, err)
		}
	}
	return looked, nil
}

// concerns says whether a change to name can change the proxy settings: name is a
// looked-at path, in a looked-at directory, or above one (a directory on the way to it
// created, moved or removed).
func concerns(looked []string, name string) bool {
	for _, l := range looked {
		if name == l || filepath.Dir(name) == l || strings.HasPrefix(l, name+"/") {
			return true
		}
	}
	return false
}
