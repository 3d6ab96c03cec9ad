package remediate

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/imdsmend/imdsmend/facts/containers"
	ec2facts "github.com/imdsmend/imdsmend/facts/ec2"
	"github.com/imdsmend/imdsmend/facts/imds"
	"github.com/imdsmend/imdsmend/internal/ec2api"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/gocty"
)

// KindMetadataOptions is the remediation kind of MetadataOptions.
const KindMetadataOptions = "metadata_options"

// MetadataAPI is what the fixer calls; *ec2api.Client is one.
type MetadataAPI interface {
	Describe(ctx context.Context, id string) (*ec2api.Instance, error)
	Modify(ctx context.Context, id string, ch ec2api.Change) (*ec2api.Instance, error)
}

// MetadataOptions changes the instance's own metadata options through the EC2 API
// (ModifyInstanceMetadataOptions): a dry run, the call, then DescribeInstances until the
// change is applied. A refusal (IAM, an enforced IMDSv2, a declarative policy) fails the
// change with who must change what, after one call; only throttling is retried, with
// backoff. Undo sets the recorded previous values again.
type MetadataOptions struct {
	// New builds the API client; nil builds an *ec2api.Client.
	New func(ctx context.Context, cfg ec2api.Config) (MetadataAPI, error)
	// Reprobe checks IMDS again from the containers once the change is applied, and says
	// what it saw; nil runs ReprobeContainers. (The run probes everything again after
	// apply too, the host's IMDS included.)
	Reprobe func(ctx context.Context, env *Env) string
}

// Kind implements Fixer.
func (MetadataOptions) Kind() string { return KindMetadataOptions }

// Doc implements Fixer.
func (MetadataOptions) Doc() string {
	return "set the instance's metadata options through the EC2 API (http_endpoint, hop_limit, http_tokens, …); undo sets the previous values"
}

// Permission implements Fixer.
func (MetadataOptions) Permission() types.Permission { return types.PermEC2API }

// Spec implements Fixer.
func (MetadataOptions) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{
		"http_endpoint":          &hcldec.AttrSpec{Name: "http_endpoint", Type: cty.String},
		"hop_limit":              &hcldec.AttrSpec{Name: "hop_limit", Type: cty.Number},
		"http_tokens":            &hcldec.AttrSpec{Name: "http_tokens", Type: cty.String},
		"http_protocol_ipv6":     &hcldec.AttrSpec{Name: "http_protocol_ipv6", Type: cty.String},
		"instance_metadata_tags": &hcldec.AttrSpec{Name: "instance_metadata_tags", Type: cty.String},
		"v1_callers":             &hcldec.AttrSpec{Name: "v1_callers", Type: cty.List(cty.String)},
	}
}

// metadataData is the ledger's record: what was set, on which instance, and what was
// there before (filled by Snapshot from the API, so an intent alone can be undone).
type metadataData struct {
	InstanceID string        `json:"instance_id"`
	Region     string        `json:"region"`
	RoleARN    string        `json:"role_arn,omitempty"`
	Want       ec2api.Change `json:"want"`
	// Previous holds the values Want replaces, read just before the call.
	Previous *ec2api.Change `json:"previous,omitempty"`
}

var enumArgs = map[string][]string{
	"http_endpoint":          {"enabled", "disabled"},
	"http_tokens":            {"optional", "required"},
	"http_protocol_ipv6":     {"enabled", "disabled"},
	"instance_metadata_tags": {"enabled", "disabled"},
}

// Plan implements Fixer: one change for this instance holding the settings that differ
// from the API's values in this run's facts (all of them when the facts lack the API's).
func (MetadataOptions) Plan(_ context.Context, env *Env, args cty.Value) ([]*Change, error) {
	want, v1, err := decodeMetadataArgs(args)
	if err != nil {
		return nil, err
	}
	d := metadataData{Want: want}
	f := env.Facts
	if f != nil && f.Identity != nil {
		d.InstanceID, d.Region = f.Identity.InstanceID, f.Identity.Region
	}
	var now *ec2api.MetadataOptions
	if f != nil && f.EC2 != nil {
		d.RoleARN, now = f.EC2.RoleARN, f.EC2.MetadataOptions
	}
	if now != nil {
		d.Want = differing(want, *now)
		if d.Want.Empty() {
			return nil, nil
		}
	}
	c := &Change{Target: "instance " + cmp.Or(d.InstanceID, "(unknown)") + " in " + cmp.Or(d.Region, "(unknown region)"),
		Detail: "ModifyInstanceMetadataOptions: " + describeChange(d.Want, now)}
	switch {
	case d.InstanceID == "" || d.Region == "":
		c.Status, c.Error = types.StatusFailed, "the instance ID or region is unknown (facts.identity has no source for it): set settings.ec2.region or AWS_REGION; the instance ID comes from the DMI asset tag, cloud-init or IMDS"
	case d.Want.HTTPTokens == "required" && len(v1) > 0:
		c.Status, c.Error = types.StatusSkipped, fmt.Sprintf("not required: IMDSv1 callers were seen (%s); requiring tokens would break them silently: move them to IMDSv2 first", strings.Join(v1, ", "))
	case d.Want.HTTPTokens == "required" && f != nil && f.IMDS != nil && f.IMDS.Version == types.VersionV1:
		c.Status, c.Error = types.StatusSkipped, "not required: IMDS answered only without a token in this run (IMDSv1); requiring tokens would cut it off"
	}
	if c.Data, err = json.Marshal(d); err != nil {
		return nil, err
	}
	return []*Change{c}, nil
}

func decodeMetadataArgs(args cty.Value) (ec2api.Change, []string, error) {
	ch := ec2api.Change{
		HTTPEndpoint:         optString(args.GetAttr("http_endpoint")),
		HTTPTokens:           optString(args.GetAttr("http_tokens")),
		HTTPProtocolIPv6:     optString(args.GetAttr("http_protocol_ipv6")),
		InstanceMetadataTags: optString(args.GetAttr("instance_metadata_tags")),
	}
	for name, v := range map[string]string{"http_endpoint": ch.HTTPEndpoint, "http_tokens": ch.HTTPTokens,
		"http_protocol_ipv6": ch.HTTPProtocolIPv6, "instance_metadata_tags": ch.InstanceMetadataTags} {
		if v != "" && !slices.Contains(enumArgs[name], v) {
			return ch, nil, fmt.Errorf("%s must be %s, not %q", name, strings.Join(enumArgs[name], " or "), v)
		}
	}
	if h := args.GetAttr("hop_limit"); !h.IsNull() && h.IsKnown() {
		if err := gocty.FromCtyValue(h, &ch.HopLimit); err != nil || ch.HopLimit < 1 || ch.HopLimit > 64 {
			return ch, nil, fmt.Errorf("hop_limit must be a whole number from 1 to 64, not %s", h.AsBigFloat().String())
		}
	}
	var v1 []string
	if l := args.GetAttr("v1_callers"); !l.IsNull() && l.IsKnown() {
		if err := gocty.FromCtyValue(l, &v1); err != nil {
			return ch, nil, fmt.Errorf("v1_callers: %w", err)
		}
	}
	if ch.Empty() {
		return ch, nil, errors.New("nothing to set: name at least one of http_endpoint, hop_limit, http_tokens, http_protocol_ipv6, instance_metadata_tags")
	}
	return ch, v1, nil
}

// differing keeps the settings of want that differ from now.
func differing(want ec2api.Change, now ec2api.MetadataOptions) ec2api.Change {
	keep := func(w, n string) string {
		if w == n {
			return ""
		}
		return w
	}
	out := ec2api.Change{
		HTTPEndpoint:         keep(want.HTTPEndpoint, now.HTTPEndpoint),
		HTTPTokens:           keep(want.HTTPTokens, now.HTTPTokens),
		HTTPProtocolIPv6:     keep(want.HTTPProtocolIPv6, now.HTTPProtocolIPv6),
		InstanceMetadataTags: keep(want.InstanceMetadataTags, now.InstanceMetadataTags),
	}
	if want.HopLimit != now.HopLimit {
		out.HopLimit = want.HopLimit
	}
	return out
}

// previous is what now holds of the settings ch sets.
func previous(ch ec2api.Change, now ec2api.MetadataOptions) ec2api.Change {
	var p ec2api.Change
	if ch.HTTPEndpoint != "" {
		p.HTTPEndpoint = now.HTTPEndpoint
	}
	if ch.HTTPTokens != "" {
		p.HTTPTokens = now.HTTPTokens
	}
	if ch.HTTPProtocolIPv6 != "" {
		p.HTTPProtocolIPv6 = now.HTTPProtocolIPv6
	}
	if ch.InstanceMetadataTags != "" {
		p.InstanceMetadataTags = now.InstanceMetadataTags
	}
	if ch.HopLimit != 0 {
		p.HopLimit = now.HopLimit
	}
	return p
}

// describeChange reads "http_endpoint disabled → enabled, hop_limit 1 → 2".
func describeChange(ch ec2api.Change, now *ec2api.MetadataOptions) string {
	var cur ec2api.Change
	if now != nil {
		cur = previous(ch, *now)
	}
	var parts []string
	add := func(name, from, to string) {
		if to == "" {
			return
		}
		if from == "" || from == "0" {
			parts = append(parts, name+" = "+to)
		} else {
			parts = append(parts, name+" "+from+" → "+to)
		}
	}
	add("http_endpoint", cur.HTTPEndpoint, ch.HTTPEndpoint)
	if ch.HopLimit != 0 {
		add("hop_limit", fmt.Sprint(cur.HopLimit), fmt.Sprint(ch.HopLimit))
	}
	add("http_tokens", cur.HTTPTokens, ch.HTTPTokens)
	add("http_protocol_ipv6", cur.HTTPProtocolIPv6, ch.HTTPProtocolIPv6)
	add("instance_metadata_tags", cur.InstanceMetadataTags, ch.InstanceMetadataTags)
	return strings.Join(parts, ", ")
}

// client builds the API client for d; IMDS is left out of the credential sources when it
// did not answer in this run.
func (m MetadataOptions) client(ctx context.Context, env *Env, d metadataData) (MetadataAPI, error) {
	noIMDS := env.Facts == nil || env.Facts.IMDS == nil || !env.Facts.IMDS.Reachable
	cfg := ec2api.Config{Region: d.Region, NoIMDS: noIMDS, RoleARN: d.RoleARN}
	if m.New != nil {
		return m.New(ctx, cfg)
	}
	return ec2api.New(ctx, cfg)
}

// Snapshot implements Snapshotter: the values the change replaces, read from the API just
// before the intent is recorded, so undo has them even if the run stops after the call.
func (m MetadataOptions) Snapshot(ctx context.Context, env *Env, c *Change) error {
	d, err := decodeMetadataData(c.Data)
	if err != nil {
		return err
	}
	api, err := m.client(ctx, env, d)
	if err != nil {
		return explain(err)
	}
	in, err := api.Describe(ctx, d.InstanceID)
	if err != nil {
		return explain(err)
	}
	d.Want = differing(d.Want, in.MetadataOptions)
	p := previous(d.Want, in.MetadataOptions)
	d.Previous = &p
	c.Before, err = json.Marshal(in.MetadataOptions)
	if err != nil {
		return err
	}
	c.Data, err = json.Marshal(d)
	return err
}

// Apply implements Fixer.
func (m MetadataOptions) Apply(ctx context.Context, env *Env, c *Change) error {
	d, err := decodeMetadataData(c.Data)
	if err != nil {
		return err
	}
	if d.Want.Empty() {
		c.Status, c.Detail = types.StatusUnchanged, "the metadata options are already as wanted"
		return nil
	}
	api, err := m.client(ctx, env, d)
	if err != nil {
		return explain(err)
	}
	// The wait for "applied" leaves a third of the run's time to probe again and report.
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-time.Until(dl)/3))
		defer cancel()
	}
	in, err := api.Modify(ctx, d.InstanceID, d.Want)
	if in == nil && err != nil {
		return explain(err)
	}
	// The options changed: the answer kept for the ec2 probe is out of date.
	if ferr := ec2facts.Forget(env.Paths); ferr != nil && err == nil {
		err = fmt.Errorf("the change is applied, but the kept API answer could not be dropped (the next check may show the old values): %w", ferr)
	}
	if err != nil {
		// Accepted but not seen applied: recorded as made, so undo can revert it.
		c.Error = explain(err).Error()
		return nil
	}
	c.Detail = "ModifyInstanceMetadataOptions applied: " + describeChange(d.Want, prevOptions(d.Previous))
	reprobe := m.Reprobe
	if reprobe == nil {
		reprobe = ReprobeContainers
	}
	if seen := reprobe(ctx, env); seen != "" {
		c.Detail += "; " + seen
	}
	return nil
}

// ReprobeContainers measures the hop-limit fingerprint again inside the containers this
// run's facts found, and says how many are served now; "" when there are none.
func ReprobeContainers(ctx context.Context, env *Env) string {
	if env.Facts == nil || env.Facts.Containers == nil || len(env.Facts.Containers.List) == 0 {
		return ""
	}
	cfg := containers.Config{Paths: env.Paths, IMDS: imds.Config{Endpoint: cmp.Or(os.Getenv(imds.EndpointEnv), imds.DefaultEndpoint)}}
	var served, probed []string
	for _, c := range containers.Reprobe(ctx, cfg, env.Facts.Containers.List) {
		if c.Fingerprint == containers.FingerprintNotProbed {
			continue
		}
		probed = append(probed, c.ID)
		if c.Fingerprint == containers.FingerprintOK {
			served = append(served, c.ID)
		}
	}
	return fmt.Sprintf("from the containers, %d of %d probed get a token now", len(served), len(probed))
}

// prevOptions turns the recorded previous values back into options for describeChange.
func prevOptions(p *ec2api.Change) *ec2api.MetadataOptions {
	if p == nil {
		return nil
	}
	return &ec2api.MetadataOptions{HTTPEndpoint: p.HTTPEndpoint, HTTPTokens: p.HTTPTokens, HopLimit: p.HopLimit,
		HTTPProtocolIPv6: p.HTTPProtocolIPv6, InstanceMetadataTags: p.InstanceMetadataTags}
}

// Undo implements Fixer: the previous values are set the same way.
func (m MetadataOptions) Undo(ctx context.Context, env *Env, c *Change) error {
	d, err := decodeMetadataData(c.Data)
	if err != nil {
		return err
	}
	if d.Previous == nil || d.Previous.Empty() {
		c.Detail = "nothing to revert: no previous values were recorded"
		return nil
	}
	api, err := m.client(ctx, env, d)
	if err != nil {
		return explain(err)
	}
	in, err := api.Modify(ctx, d.InstanceID, *d.Previous)
	if in == nil && err != nil {
		return explain(err)
	}
	if ferr := ec2facts.Forget(env.Paths); ferr != nil {
		return fmt.Errorf("reverted, but the kept API answer could not be dropped: %w", ferr)
	}
	c.Detail = "ModifyInstanceMetadataOptions applied: " + describeChange(*d.Previous, prevOptions(&d.Want))
	if err != nil {
		// Accepted: the API applies it in its time, as it does the change itself.
		c.Detail = "ModifyInstanceMetadataOptions accepted, not yet seen applied (" + err.Error() + "): " + describeChange(*d.Previous, prevOptions(&d.Want))
	}
	return nil
}

// decodeMetadataData reads the ledger's record.
func decodeMetadataData(raw json.RawMessage) (metadataData, error) {
	var d metadataData
	if err := json.Unmarshal(raw, &d); err != nil {
		return d, fmt.Errorf("decode ledger record: %w", err)
	}
	return d, nil
}

// explain adds to an API error who must change what.
func explain(err error) error {
	var e *ec2api.Error
	if errors.As(err, &e) && e.Hint() != "" {
		return fmt.Errorf("%w: %s", err, e.Hint())
	}
	return err
}
