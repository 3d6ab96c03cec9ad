package nic

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"time"
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
	file := filepath.Join(cfg.Paths.StateDir, StateFile) // as seen inside --root
	doc, prev, err := loadState(cfg, file)
	if err != nil {
		// A damaged file only costs this run its deltas: it is replaced below.
		n.StateError = err.Error()
	}
	n.WindowSeconds, n.LinkLocalExceededDelta = compare(n.Interfaces, prev, cfg.Now)
	if err := saveState(cfg, file, doc, cur); err != nil {
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

// loadState reads state.json: the whole document (to keep the other keys) and the
// previous sample, nil when there is none.
func loadState(cfg Config, file string) (map[string]json.RawMessage, *sample, error) {
	doc := map[string]json.RawMessage{}
	data, err := cfg.Paths.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return doc, nil, nil
	}
	if err != nil {
		return doc, nil, fmt.Errorf("read %s: %w", file, err)
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return map[string]json.RawMessage{}, nil, fmt.Errorf("%s is not a JSON object, replaced: %w", file, err)
	}
	raw, ok := doc[stateKey]
	if !ok {
		return doc, nil, nil
	}
	var s sample
	if err := json.Unmarshal(raw, &s); err != nil {
		return doc, nil, fmt.Errorf("%s: its %q key is damaged, replaced: %w", file, stateKey, err)
	}
	return doc, &s, nil
}

func saveState(cfg Config, file string, doc map[string]json.RawMessage, cur sample) error {
	raw, err := json.Marshal(cur)
	if err != nil {
		return fmt.Errorf("encode the counters: %w", err)
	}
	out := maps.Clone(doc)
	out[stateKey] = raw
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", file, err)
	}
	if err := cfg.Paths.MkdirAll(cfg.Paths.StateDir, 0o700); err != nil {
		return fmt.Errorf("create the state directory for %s: %w", file, err)
	}
	if err := cfg.Paths.WriteFile(file, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("keep the counters in %s: %w", file, err)
	}
	return nil
}
