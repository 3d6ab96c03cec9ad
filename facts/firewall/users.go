package firewall

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"sync"

	"github.com/imdsmend/imdsmend/internal/paths"
)

// The files owner matches' names come from (under the probe's root).
const passwdFile, groupFile = "/etc/passwd", "/etc/group"

// maxID is the largest valid uid or gid; (uid_t)-1 means "none".
const maxID = 1<<32 - 2

// userDB resolves the user and group names owner matches may use, from /etc/passwd and
// /etc/group under the probe's root (so tests can supply their own). The files are read
// the first time a rule names a user or group: most rulesets name none, and /etc/passwd
// can be large where a directory service is mirrored into it.
type userDB struct {
	paths         paths.Paths
	once          sync.Once
	users, groups map[string]uint32
}

func newUserDB(p paths.Paths) *userDB { return &userDB{paths: p} }

// readIDFile reads name:x:id:... lines of the system file path under root, never through a
// link leading out of root; a missing or odd file just resolves no names.
func readIDFile(p paths.Paths, path string) map[string]uint32 {
	ids := map[string]uint32{}
	data, err := p.ReadFile(path)
	if err != nil {
		return ids
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if id, err := strconv.ParseUint(f[2], 10, 32); err == nil {
			ids[f[0]] = uint32(id)
		}
	}
	return ids
}

// idRange reads "1000", "1000-10000" or a user (group) name into an inclusive range.
func (db *userDB) idRange(s string, uid bool) (lo, hi uint32, ok bool) {
	from, to, isRange := strings.Cut(s, "-")
	if lo, ok = db.id(from, uid); !ok {
		return 0, 0, false
	}
	if !isRange {
		return lo, lo, true
	}
	if hi, ok = db.id(to, uid); !ok || hi < lo {
		return 0, 0, false
	}
	return lo, hi, true
}

func (db *userDB) id(s string, uid bool) (uint32, bool) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return uint32(n), true
	}
	if db == nil {
		return 0, false
	}
	db.once.Do(func() {
		db.users = readIDFile(db.paths, passwdFile)
		db.groups = readIDFile(db.paths, groupFile)
	})
	names := db.groups
	if uid {
		names = db.users
	}
	n, ok := names[s]
	return n, ok
}

// UserID resolves a user name or numeric uid as an owner match would, from /etc/passwd
// under p's root.
func UserID(p paths.Paths, user string) (uint32, bool) {
	return newUserDB(p).id(user, true)
}
