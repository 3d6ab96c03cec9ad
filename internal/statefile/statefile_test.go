package statefile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/imdsmend/imdsmend/internal/paths"
)

// childEnv makes the test binary a second writer process: it sets the keys child-0… under
// the --root named by the variable.
const childEnv = "STATEFILE_TEST_CHILD_ROOT"

const perWriter = 100

func TestMain(m *testing.M) {
	if root := os.Getenv(childEnv); root != "" {
		if err := writeKeys(paths.New(root), "child"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// writeKeys sets prefix-0 … prefix-(perWriter-1), one Update each.
func writeKeys(p paths.Paths, prefix string) error {
	for i := range perWriter {
		key := prefix + "-" + strconv.Itoa(i)
		if err := Update(p, func(doc map[string]json.RawMessage) error {
			doc[key] = json.RawMessage(`true`)
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// TestUpdateLosesNoKey: goroutines of this process and a second process update their own
// keys at once; every key must be in the file at the end (without the lock, read-modify-
// writes overlap and keep only one writer's key).
func TestUpdateLosesNoKey(t *testing.T) {
	root := t.TempDir()
	p := paths.New(root)
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"="+root)
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	const goroutines = 8
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() { errs <- writeKeys(p, "g"+strconv.Itoa(g)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if err := child.Wait(); err != nil {
		t.Fatalf("the second process: %v", err)
	}
	doc, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	var lost []string
	for _, prefix := range []string{"child", "g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7"} {
		for i := range perWriter {
			if _, ok := doc[prefix+"-"+strconv.Itoa(i)]; !ok {
				lost = append(lost, prefix+"-"+strconv.Itoa(i))
			}
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d keys lost, e.g. %q", len(lost), (goroutines+1)*perWriter, lost[0])
	}
}

// TestUpdate: the file's format, a damaged file replaced, a missing directory created
// 0700, an edit's failure writing nothing, and everything inside --root.
func TestUpdate(t *testing.T) {
	tests := []struct {
		name, before string // before: "" for no state directory at all
		editErr      error
		wantErr      error // errors.Is
		want         string
	}{
		{"no directory", "", nil, nil, "{\n  \"mine\": 1\n}\n"},
		{"other keys kept", `{"other":{"x":1}}`, nil, nil, "{\n  \"mine\": 1,\n  \"other\": {\n    \"x\": 1\n  }\n}\n"},
		{"damaged", `{"other":`, nil, ErrDamaged, "{\n  \"mine\": 1\n}\n"},
		{"null", `null`, nil, nil, "{\n  \"mine\": 1\n}\n"},
		{"edit fails", `{"other":1}`, errors.New("no"), nil, `{"other":1}`},
	}
	for _, tt := range tests {
		root := t.TempDir()
		p := paths.New(root)
		p.StateDir = "/var/lib/x"
		file := filepath.Join(root, "var/lib/x", File)
		if tt.before != "" {
			if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte(tt.before), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		err := Update(p, func(doc map[string]json.RawMessage) error {
			doc["mine"] = json.RawMessage(`1`)
			return tt.editErr
		})
		switch {
		case tt.editErr != nil && err != tt.editErr:
			t.Errorf("%s: Update = %v; want the edit's error", tt.name, err)
		case tt.editErr == nil && tt.wantErr == nil && err != nil:
			t.Errorf("%s: Update = %v", tt.name, err)
		case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
			t.Errorf("%s: Update = %v; want %v", tt.name, err, tt.wantErr)
		}
		data, err := os.ReadFile(file)
		if err != nil || string(data) != tt.want {
			t.Errorf("%s: state.json = %q (%v); want %q", tt.name, data, err, tt.want)
		}
		if fi, err := os.Stat(filepath.Dir(file)); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: state directory %v (%v); want mode 0700", tt.name, fi.Mode(), err)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(file), LockFile)); err != nil {
			t.Errorf("%s: lock file: %v", tt.name, err)
		}
	}
}

// TestStaysInRoot: a state directory linked out of --root is neither written nor locked
// there.
func TestStaysInRoot(t *testing.T) {
	outside := t.TempDir()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "var/lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/../../../../../../.."+outside, filepath.Join(root, "var/lib/imdsmend")); err != nil {
		t.Fatal(err)
	}
	p := paths.New(root)
	if _, err := Read(p); err != nil {
		t.Fatal(err)
	}
	_ = Update(p, func(doc map[string]json.RawMessage) error { doc["k"] = json.RawMessage(`1`); return nil })
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("written outside --root: %v", entries)
	}
	if doc, err := Read(p); err != nil || doc["k"] == nil {
		t.Errorf("read back inside --root: %v, %v", doc, err)
	}
}
