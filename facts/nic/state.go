package nic

import (
	"cmp"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/imdsmend/imdsmend/internal/statefile"
)

// sample is what state.json keeps of one run's counters, under the key "nic"; other keys
// of the file belong to others and are kept as they are.
type sample struct {
	Time       time.Time                  `json:"time"`
	Interfaces map[string]sampleInterface `json:"interfaces"`
}

type sampleInterface struct {
	Driver   string           `json:"driver_version"`
	Counters map[string]int64 `json:"counters"`
}

const stateKey = "nic"

// track fills the deltas since the sample kept in state.json and keeps this one. Without
// an available counter it neither reads nor writes the file: there is nothing to keep.
func track(cfg Config, ins []Interface) *NIC {
	n := &NIC{Interfaces: ins}
	cur := sample{Time: cfg.Now, Interfaces: map[string]sampleInterface{}}
	for _, in := range ins {
		if in.Available {
			cur.Interfaces[in.Name] = sampleInterface{Driver: in.DriverVersion, Counters: in.Counters}
		}
	}
	if len(cur.Interfaces) == 0 {
		return n
	}
	var keyErr error
	err := statefile.Update(cfg.Paths, func(doc map[string]json.RawMessage) error {
		var prev *sample
		prev, keyErr = previous(cfg, doc)
		n.WindowSeconds, n.LinkLocalExceededDelta = compare(n.Interfaces, prev, cfg.Now)
		raw, err := json.Marshal(cur)
		if err != nil {
			return fmt.Errorf("encode the counters: %w", err)
		}
		doc[stateKey] = raw
		return nil
	})
	// A damaged file or key only costs this run its deltas: it is replaced.
	if err = cmp.Or(err, keyErr); err != nil {
		n.StateError = err.Error()
	}
	return n
}

// compare fills each interface's deltas against prev and returns the window and the
// summed linklocal delta.
func compare(ins []Interface, prev *sample, now time.Time) (window float64, linklocal int64) {
	if prev == nil {
		return 0, 0
	}
	if d := now.Sub(prev.Time); d > 0 {
		window = d.Seconds()
	}
	for i := range ins {
		in := &ins[i]
		was, ok := prev.Interfaces[in.Name]
		if !in.Available || !ok {
			continue
		}
		in.Reset = was.Driver != in.DriverVersion
		for _, c := range ExceededCounters {
			if v, ok := in.Counters[c]; ok && v < was.Counters[c] {
				in.Reset = true
			}
		}
		in.Deltas = make(map[string]int64, len(ExceededCounters))
		for _, c := range ExceededCounters {
			v, ok := in.Counters[c]
			if !ok {
				continue
			}
			if in.Reset {
				// The counters restarted after the previous sample: all they hold is new.
				in.Deltas[c] = v
			} else {
				in.Deltas[c] = v - was.Counters[c]
			}
		}
		linklocal += in.Deltas[LinkLocalExceeded]
	}
	return window, linklocal
}

// previous is the sample kept in state.json's doc, nil when there is none.
func previous(cfg Config, doc map[string]json.RawMessage) (*sample, error) {
	raw, ok := doc[stateKey]
	if !ok {
		return nil, nil
	}
	var s sample
	if err := json.Unmarshal(raw, &s); err != nil {
		file := filepath.Join(cfg.Paths.StateDir, StateFile) // as seen inside --root
		return nil, fmt.Errorf("%s: its %q key is damaged, replaced: %w", file, stateKey, err)
	}
	return &s, nil
}
