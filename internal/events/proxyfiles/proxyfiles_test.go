package proxyfiles

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/imdsmend/imdsmend/internal/paths"
)

func TestConcerns(t *testing.T) {
	looked := []string{"/r/etc/environment", "/r/etc/profile.d", "/r/etc/systemd/system"}
	tests := []struct {
		name string
		want bool
	}{
		{"/r/etc/environment", true},
		{"/r/etc/profile.d/proxy.sh", true},
		{"/r/etc/systemd/system/docker.service.d", true},
		{"/r/etc/systemd", true}, // on the way to a looked-at directory
		{"/r/etc", true},
		{"/r/etc/hostname", false},
		{"/r/etc/environment.dpkg-new", false},
		{"/r/etc/profile.d/sub/x.sh", false},
		{"/r/etc/systemd/systemx", false},
	}
	for _, tt := range tests {
		if got := concerns(looked, tt.name); got != tt.want {
			t.Errorf("concerns(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestFollowsCreatedFiles: a file created where none was, and one in a unit's drop-in
// directory that did not exist either, are changes the watcher sees once it follows what
// the proxy facts look at again (as Run does after every change).
func TestFollowsCreatedFiles(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := Source{Paths: paths.New(root)}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	looked, err := s.follow(w)
	if err != nil {
		t.Fatal(err)
	}
	// expect waits for an event that concerns the proxy settings (about file, when named).
	expect := func(what, file string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case ev := <-w.Events:
				if concerns(looked, ev.Name) && (file == "" || ev.Name == filepath.Join(root, file)) {
					if looked, err = s.follow(w); err != nil {
						t.Fatal(err)
					}
					return
				}
			case err := <-w.Errors:
				t.Fatal(err)
			case <-deadline:
				t.Fatalf("no event for %s", what)
			}
		}
	}
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/environment", "http_proxy=http://proxy:3128\n")
	expect("/etc/environment created", "etc/environment")
	if err := os.MkdirAll(filepath.Join(root, "etc/systemd/system/docker.service.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	expect("the drop-in directory created", "")
	const dropIn = "etc/systemd/system/docker.service.d/http-proxy.conf"
	write(dropIn, "[Service]\nEnvironment=HTTP_PROXY=http://proxy:3128\n")
	expect("a drop-in created in it", dropIn)
}
