package fleet

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress hears about the changes of an apply or undo as they end.
type Progress interface {
	Start(command string, total int)
	Step(c Change, done, total int)
	End()
}

type nopProgress struct{}

func (nopProgress) Start(string, int)     {}
func (nopProgress) Step(Change, int, int) {}
func (nopProgress) End()                  {}

// NewProgress writes progress to w: a bar redrawn in place when w is a terminal, else one
// JSON object a line per change ({"event":"change", …}), for CI logs and scripts.
func NewProgress(w io.Writer, terminal bool) Progress {
	if terminal {
		return &bar{w: w}
	}
	return &jsonLines{enc: json.NewEncoder(w)}
}

// bar is a progress bar on a terminal, redrawn at most every 100 ms.
type bar struct {
	mu      sync.Mutex
	w       io.Writer
	command string
	last    time.Time
	counts  map[string]int
}

func (b *bar) Start(command string, total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.command, b.counts = command, map[string]int{}
	if total > 0 {
		b.draw(0, total)
	}
}

func (b *bar) Step(c Change, done, total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.counts[string(c.Status)]++
	if done == total || time.Since(b.last) >= 100*time.Millisecond {
		b.draw(done, total)
	}
}

const barWidth = 30

func (b *bar) draw(done, total int) {
	b.last = time.Now()
	filled := barWidth * done / max(total, 1)
	var parts []string
	for _, st := range []string{"applied", "reverted", "skipped", "failed"} {
		if n := b.counts[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", st, n))
		}
	}
	fmt.Fprintf(b.w, "\r%s [%s%s] %d/%d %s\x1b[K", b.command, strings.Repeat("#", filled), strings.Repeat(".", barWidth-filled), done, total, strings.Join(parts, ", "))
}

func (b *bar) End() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.counts != nil && !b.last.IsZero() {
		fmt.Fprintln(b.w)
	}
}

// jsonLines writes one line per finished change.
type jsonLines struct {
	mu  sync.Mutex
	enc *json.Encoder
}

type progressLine struct {
	Event      string `json:"event"`
	Command    string `json:"command,omitempty"`
	ID         string `json:"id,omitempty"`
	Account    string `json:"account,omitempty"`
	Region     string `json:"region,omitempty"`
	InstanceID string `json:"instance_id,omitempty"`
	Status     string `json:"status,omitempty"`
	Error      string `json:"error,omitempty"`
	Done       int    `json:"done"`
	Total      int    `json:"total"`
}

func (j *jsonLines) Start(command string, total int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.enc.Encode(progressLine{Event: "start", Command: command, Total: total})
}

func (j *jsonLines) Step(c Change, done, total int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.enc.Encode(progressLine{Event: "change", ID: c.ID, Account: c.Account, Region: c.Region, InstanceID: c.InstanceID,
		Status: string(c.Status), Error: c.Error, Done: done, Total: total})
}

func (j *jsonLines) End() {}
