package rules

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// errUnsafe marks a policy file or directory refused by checkOwnership.
var errUnsafe = errors.New("unsafe policy permissions")

// unsafeError explains which file is unsafe and how to fix it.
type unsafeError struct{ path, why, fix string }

func (e *unsafeError) Error() string {
	return fmt.Sprintf("%s %s, so someone other than root could decide what imdsmend changes as root. Fix it with: %s", e.path, e.why, e.fix)
}

func (e *unsafeError) Is(target error) bool { return target == errUnsafe }

// checkPolicyDir applies checkOwnership to a directory holding policy files.
func checkPolicyDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	return checkOwnership(dir, fi)
}

// checkOwnership is imdsmend's StrictModes (after sshd's): a policy file or directory must
// be owned by root and writable by no one else. A user other than root may also use files
// they own, for `imdsmend validate` and `imdsmend test` on a policy they are writing; such a
// run cannot change the system. --root relaxes nothing.
func checkOwnership(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return &unsafeError{path, "has no owner information", "move it to a local file system"}
	}
	if euid := os.Geteuid(); st.Uid != 0 && int(st.Uid) != euid {
		owner := "root"
		if euid != 0 {
			owner = fmt.Sprintf("root or uid %d (who runs imdsmend)", euid)
		}
		return &unsafeError{path, fmt.Sprintf("is owned by uid %d, not %s", st.Uid, owner), "chown root: " + path}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		who := map[fs.FileMode]string{0o020: "group", 0o002: "others", 0o022: "group and others"}[perm&0o022]
		return &unsafeError{path, fmt.Sprintf("is writable by %s (mode %s)", who, fi.Mode()), "chmod go-w " + path}
	}
	return nil
}
