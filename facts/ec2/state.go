package ec2

import (
	"encoding/json"
	"maps"
	"path/filepath"
	"time"

	"github.com/imdsmend/imdsmend/internal/paths"
)

// StateFile is the state directory's file of values kept between runs; this package
// owns its key "ec2", other keys are kept as they are.
const (
	StateFile = "state.json"
	stateKey  = "ec2"
)

// kept is what state.json holds under "ec2".
type kept struct {
	Time time.Time `json:"time"`
	EC2  *EC2      `json:"facts"`
}

// load returns the answer kept for this instance and region when it is fresh.
func load(cfg Config, want *EC2) (*EC2, bool) {
	if cfg.CacheFor <= 0 {
		return nil, false
	}
	doc := readDoc(cfg.Paths)
	raw, ok := doc[stateKey]
	if !ok {
		return nil, false
	}
	var k kept
	if err := json.Unmarshal(raw, &k); err != nil || k.EC2 == nil {
		return nil, false
	}
	age := cfg.Now.Sub(k.Time)
	if age < 0 || age >= cfg.CacheFor || k.EC2.InstanceID != want.InstanceID || k.EC2.Region != want.Region ||
		k.EC2.RoleARN != want.RoleARN || k.EC2.MetadataOptions == nil {
		return nil, false
	}
	k.EC2.Cached = true
	k.EC2.WithoutIMDS = want.WithoutIMDS
	return k.EC2, true
}

// save keeps a complete answer; a failure to keep it only costs the next run a call.
func save(cfg Config, e *EC2) {
	if cfg.CacheFor <= 0 {
		return
	}
	raw, err := json.Marshal(kept{Time: cfg.Now, EC2: e})
	if err != nil {
		return
	}
	doc := readDoc(cfg.Paths)
	doc[stateKey] = raw
	_ = writeDoc(cfg.Paths, doc)
}

// Forget drops the kept answer, as a fixer must after changing the options: the next
// probe asks the API again.
func Forget(p paths.Paths) error {
	doc := readDoc(p)
	if _, ok := doc[stateKey]; !ok {
		return nil
	}
	delete(doc, stateKey)
	return writeDoc(p, doc)
}

func readDoc(p paths.Paths) map[string]json.RawMessage {
	doc := map[string]json.RawMessage{}
	data, err := p.ReadFile(filepath.Join(p.StateDir, StateFile))
	if err == nil {
		if json.Unmarshal(data, &doc) != nil {
			return map[string]json.RawMessage{}
		}
	}
	return doc
}

func writeDoc(p paths.Paths, doc map[string]json.RawMessage) error {
	data, err := json.MarshalIndent(maps.Clone(doc), "", "  ")
	if err != nil {
		return err
	}
	if err := p.MkdirAll(p.StateDir, 0o700); err != nil {
		return err
	}
	return p.WriteFile(filepath.Join(p.StateDir, StateFile), append(data, '\n'), 0o644)
}
