package rules

import (
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// ctyJSON marshals a cty value as JSON, for comparing values as text in tests.
type ctyJSON struct{ v cty.Value }

func (c ctyJSON) MarshalJSON() ([]byte, error) { return ctyjson.Marshal(c.v, c.v.Type()) }
