package remediate

import (
	"fmt"
	"sort"

	"github.com/hashicorp/hcl/v2/hcldec"
)

// Registry maps remediation kinds to fixers. It satisfies rules.Kinds.
type Registry struct {
	fixers map[string]Fixer
}

// NewRegistry registers fixers; a duplicate kind is a programming error and fails loudly.
func NewRegistry(fixers ...Fixer) (*Registry, error) {
	r := &Registry{fixers: map[string]Fixer{}}
	for _, f := range fixers {
		if _, dup := r.fixers[f.Kind()]; dup {
			return nil, fmt.Errorf("remediation kind %q registered twice", f.Kind())
		}
		r.fixers[f.Kind()] = f
	}
	return r, nil
}

// Get returns the fixer for kind.
func (r *Registry) Get(kind string) (Fixer, bool) {
	f, ok := r.fixers[kind]
	return f, ok
}

// Spec returns the body schema of kind.
func (r *Registry) Spec(kind string) (hcldec.Spec, bool) {
	f, ok := r.fixers[kind]
	if !ok {
		return nil, false
	}
	return f.Spec(), true
}

// Kinds lists the registered kinds in sorted order.
func (r *Registry) Kinds() []string {
	kinds := make([]string, 0, len(r.fixers))
	for k := range r.fixers {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}
