package remediate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/facts/callers"
	"github.com/imdsmend/imdsmend/facts/firewall"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/internal/statefile"
	"github.com/imdsmend/imdsmend/internal/types"
)

// BreakerRule names the finding of a held fix.
const BreakerRule = "remediation_loop"

// breakerKey is the breaker's key in state.json; the file's other keys belong to others
// and are kept as they are.
const breakerKey = "breaker"

// Breaker stops a fight: a fix that something else keeps undoing is re-applied at most
// Reapplies times within Window; the next time it is called for it is held (skipped, with
// a remediation_loop finding) until `imdsmend reset` or a new policy. Its history lives in
// state.json, so a restart does not start the fight over.
type Breaker struct {
	Reapplies int
	Window    time.Duration
	// Policy is a hash of the policy in force; a history kept under another is dropped.
	Policy string
	Paths  paths.Paths
	state  breakerState
	// dirty is set when the history changed since it was read: a pass that changes
	// nothing writes nothing.
	dirty bool
}

type breakerState struct {
	Policy string                 `json:"policy"`
	Fixes  map[string]*fixHistory `json:"fixes"`
}

// fixHistory is what the breaker knows of one fix: a rule's change of one kind to one
// target.
type fixHistory struct {
	Rule   string `json:"rule"`
	Kind   string `json:"kind"`
	Target string `json:"target"`
	// Applied holds the times it was applied within the window, oldest first.
	Applied []time.Time `json:"applied"`
	// Held is when the breaker stopped applying it; nil while it may be applied.
	Held *time.Time `json:"held,omitempty"`
}

// Loop is a fix held by the breaker this run, for the remediation_loop finding.
type Loop struct {
	Change  *Change
	Applied []time.Time
	// ReaddedBy says what puts the blocker back, "" when that can't be told.
	ReaddedBy string
}

// LoadBreaker reads the breaker's history. A damaged or unreadable history starts empty:
// the breaker then needs Reapplies more passes to notice a fight, nothing worse.
func LoadBreaker(p paths.Paths, reapplies int, window time.Duration, policy string) *Breaker {
	b := &Breaker{Reapplies: reapplies, Window: window, Policy: policy, Paths: p}
	doc, _ := statefile.Read(p)
	if raw, ok := doc[breakerKey]; ok {
		_ = json.Unmarshal(raw, &b.state)
	}
	if b.state.Policy != policy || b.state.Fixes == nil {
		b.dirty = len(b.state.Fixes) > 0
		b.state = breakerState{Policy: policy, Fixes: map[string]*fixHistory{}}
	}
	return b
}

// nftHandle is the handle in a native nft rule's target: a rule put back gets a new one,
// and is still the same fix.
var nftHandle = regexp.MustCompile(`/handle \d+:`)

// fixKey is a fix's identity: its rule, its kind and its target.
func fixKey(c *Change) string {
	return c.Rule + "\x00" + c.Kind + "\x00" + nftHandle.ReplaceAllString(c.Target, ":")
}

// Hold marks as skipped every planned change the breaker holds (their fix was re-applied
// more than Reapplies times within Window, or was held before) and returns them; f, the
// facts they were planned from, may tell what re-adds their blockers.
func (b *Breaker) Hold(changes []*Change, f *facts.Facts, now time.Time) []Loop {
	var loops []Loop
	for _, c := range changes {
		if c.Status != types.StatusPlanned {
			continue
		}
		h := b.state.Fixes[fixKey(c)]
		if h == nil {
			continue
		}
		h.Applied = within(h.Applied, now, b.Window)
		// Applying it now would re-apply it len(h.Applied) times within the window.
		if h.Held == nil && len(h.Applied) > b.Reapplies {
			h.Held, b.dirty = &now, true
		}
		if h.Held == nil {
			continue
		}
		c.Status = types.StatusSkipped
		c.Error = fmt.Sprintf("held by the fight-loop breaker since %s: re-applied more than %d times within %s, undone each time (settings.breaker); stop what re-adds it, then run `imdsmend reset`",
			h.Held.UTC().Format(time.RFC3339), b.Reapplies, b.Window)
		loops = append(loops, Loop{Change: c, Applied: slices.Clone(h.Applied), ReaddedBy: readdedBy(b.Paths, f, c)})
	}
	return loops
}

// Record counts the changes applied this run and forgets what fell out of the window.
func (b *Breaker) Record(changes []*Change, now time.Time) {
	for _, c := range changes {
		if c.Status != types.StatusApplied {
			continue
		}
		k := fixKey(c)
		h := b.state.Fixes[k]
		if h == nil {
			h = &fixHistory{Rule: c.Rule, Kind: c.Kind, Target: c.Target}
			b.state.Fixes[k] = h
		}
		h.Applied = append(h.Applied, now)
		b.dirty = true
	}
	for k, h := range b.state.Fixes {
		was := len(h.Applied)
		h.Applied = within(h.Applied, now, b.Window)
		// Beyond Reapplies+1 times the count is decided: older times change nothing.
		if n := len(h.Applied) - (b.Reapplies + 1); n > 0 {
			h.Applied = h.Applied[n:]
		}
		b.dirty = b.dirty || len(h.Applied) != was
		if len(h.Applied) == 0 && h.Held == nil {
			delete(b.state.Fixes, k)
		}
	}
}

// within returns the times no older than window before now.
func within(times []time.Time, now time.Time, window time.Duration) []time.Time {
	return slices.DeleteFunc(times, func(t time.Time) bool { return now.Sub(t) > window })
}

// Save keeps the history in state.json, when it changed.
func (b *Breaker) Save() error {
	if !b.dirty {
		return nil
	}
	b.dirty = false
	return updateState(b.Paths, func(doc map[string]json.RawMessage) error {
		raw, err := json.Marshal(b.state)
		if err != nil {
			return fmt.Errorf("encode the breaker's history: %w", err)
		}
		doc[breakerKey] = raw
		return nil
	})
}

// ResetBreaker forgets the breaker's history, so every held fix is applied again, and
// returns the fixes it held.
func ResetBreaker(p paths.Paths) ([]string, error) {
	var held []string
	err := updateState(p, func(doc map[string]json.RawMessage) error {
		var st breakerState
		if raw, ok := doc[breakerKey]; ok && json.Unmarshal(raw, &st) == nil {
			for _, h := range st.Fixes {
				if h.Held != nil {
					held = append(held, fmt.Sprintf("%s: %s %s", h.Rule, h.Kind, h.Target))
				}
			}
		}
		delete(doc, breakerKey)
		return nil
	})
	slices.Sort(held)
	return held, err
}

// updateState is statefile.Update: a damaged file it replaced is no failure of the
// breaker's, whose history starts empty then (LoadBreaker).
func updateState(p paths.Paths, edit func(doc map[string]json.RawMessage) error) error {
	if err := statefile.Update(p, edit); err != nil && !errors.Is(err, statefile.ErrDamaged) {
		return err
	}
	return nil
}

// readdedBy says what puts c's blocker back where that can be told: for a firewall rule,
// the front end that made it and the persistent file that holds it (firewall.Rule.Source);
// for a file, the processes that hold it open for writing now, right after the change
// that started this pass. "" otherwise.
func readdedBy(p paths.Paths, f *facts.Facts, c *Change) string {
	if c.Kind == "no_proxy" {
		return fileWriters(p, c.Target)
	}
	if c.Kind != "firewall_delete" || f == nil || f.Firewall == nil {
		return ""
	}
	var d firewallDeleteData
	if json.Unmarshal(c.Data, &d) != nil {
		return ""
	}
	for _, r := range f.Firewall.Rules {
		if r.Backend != d.Backend || r.Family != d.Family || r.Table != d.Table || r.Chain != d.Chain || r.Spec != d.Spec {
			continue
		}
		switch src := r.Source; {
		case src.File != "":
			return fmt.Sprintf("%s: the rule is in %s (line %d), which it loads at boot", src.FrontEnd, src.File, src.Line)
		case src.FrontEnd != "" && src.FrontEnd != firewall.FrontEndLive:
			return fmt.Sprintf("%s made the rule", src.FrontEnd)
		}
	}
	return ""
}

// fileWriters names the processes (PID, command, systemd unit) that hold file open for
// writing, from /proc/PID/fd and fdinfo; "" when none does.
func fileWriters(p paths.Paths, file string) string {
	procDir := p.File("/proc")
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return ""
	}
	host := p.File(file)
	var who []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join(procDir, e.Name())
		fds, err := os.ReadDir(filepath.Join(dir, "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
			if err != nil || link != file && link != host || !openForWriting(filepath.Join(dir, "fdinfo", fd.Name())) {
				continue
			}
			c := fmt.Sprintf("PID %d", pid)
			if d, ok := callers.Describe(p, pid); ok {
				c += " (" + d.Command + ")"
				if d.Unit != "" {
					c += " of " + d.Unit
				}
			}
			who = append(who, c)
			break
		}
	}
	if len(who) == 0 {
		return ""
	}
	return strings.Join(who, ", ") + " held " + file + " open for writing as the fix was due again"
}

// openForWriting reads the flags of /proc/PID/fdinfo/FD: open write-only or read-write.
func openForWriting(fdinfo string) bool {
	data, err := os.ReadFile(fdinfo)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			flags, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
			return err == nil && flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0
		}
	}
	return false
}
