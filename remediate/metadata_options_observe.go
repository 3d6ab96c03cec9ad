package remediate

import (
	"context"
	"fmt"
)

// Observe implements Fixer: the change is in effect while the instance's options hold
// the wanted values, and not while they hold the previous ones; anything else was
// changed since by someone else.
func (m MetadataOptions) Observe(ctx context.Context, env *Env, c *Change) (bool, error) {
	d, err := decodeMetadataData(c.Data)
	if err != nil {
		return false, err
	}
	api, err := m.client(ctx, env, d)
	if err != nil {
		return false, explain(err)
	}
	in, err := api.Describe(ctx, d.InstanceID)
	if err != nil {
		return false, explain(err)
	}
	switch now := in.MetadataOptions; {
	case differing(d.Want, now).Empty():
		return true, nil
	case d.Previous != nil && differing(*d.Previous, now).Empty():
		return false, nil
	default:
		return false, fmt.Errorf("the metadata options of %s changed since imdsmend's change (now %s)", d.InstanceID, describeChange(previous(d.Want, now), nil))
	}
}
