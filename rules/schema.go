package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/imdsmend/imdsmend/facts"
	"github.com/zclconf/go-cty/cty"
)

// Schema is what a policy's expressions read as the variable facts: the instance's own
// facts (the default), or another set of the same language, such as the EC2 fleet's
// (instance, account, region) that `imdsmend fleet` evaluates per instance.
type Schema struct {
	// Type is the cty type of the facts variable.
	Type cty.Type
	// Decode turns facts written as JSON — an object of sections, as a facts file or a
	// policy test gives them — into a value of Type, refusing fields the schema lacks.
	Decode func(data []byte) (cty.Value, error)
}

// hostSchema is the instance's facts, facts.Facts.
var hostSchema = sync.OnceValue(func() *Schema {
	return &Schema{Type: facts.Type(), Decode: func(data []byte) (cty.Value, error) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var f facts.Facts
		if err := dec.Decode(&f); err != nil {
			return cty.NilVal, fmt.Errorf("facts do not fit the facts schema (docs/facts.md): %w", err)
		}
		return facts.Value(&f)
	}}
})

// orHost is s, or the instance's facts when s is nil.
func orHost(s *Schema) *Schema {
	if s == nil {
		return hostSchema()
	}
	return s
}
