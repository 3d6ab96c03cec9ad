package ec2

import (
	"encoding/json"
	"time"

	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/internal/statefile"
)

// StateFile is the state directory's file of values kept between runs; this package
// owns its key "ec2", other keys are kept as they are.
const (
	StateFile = statefile.File
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
	_ = statefile.Update(cfg.Paths, func(doc map[string]json.RawMessage) error {
		doc[stateKey] = raw
		return nil
	})
}

// Forget drops the kept answer, as a fixer must after changing the options: the next
// probe asks the API again.
func Forget(p paths.Paths) error {
	if _, ok := readDoc(p)[stateKey]; !ok {
		return nil // nothing to write: no state directory made for it
	}
	return statefile.Update(p, func(doc map[string]json.RawMessage) error {
		delete(doc, stateKey)
		return nil
	})
}

// readDoc is state.json's keys; a missing or damaged file has none.
func readDoc(p paths.Paths) map[string]json.RawMessage {
	doc, _ := statefile.Read(p)
	return doc
}
