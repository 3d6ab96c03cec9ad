package ec2api

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Change is what Modify sets; an empty string or a zero HopLimit leaves that setting as
// it is.
type Change struct {
	HTTPEndpoint         string `json:"http_endpoint,omitempty"`
	HTTPTokens           string `json:"http_tokens,omitempty"`
	HopLimit             int    `json:"hop_limit,omitempty"`
	HTTPProtocolIPv6     string `json:"http_protocol_ipv6,omitempty"`
	InstanceMetadataTags string `json:"instance_metadata_tags,omitempty"`
}

// Empty reports whether the change sets nothing.
func (ch Change) Empty() bool { return ch == Change{} }

// Poll bounds the wait for a change to be applied: Attempts DescribeInstances calls, the
// first after Interval, each wait doubling up to MaxInterval.
type Poll struct {
	Attempts    int
	Interval    time.Duration
	MaxInterval time.Duration
}

// DefaultPoll waits about 25 s in all; the API applies a change within seconds.
var DefaultPoll = Poll{Attempts: 8, Interval: 500 * time.Millisecond, MaxInterval: 4 * time.Second}

func (p Poll) withDefaults() Poll {
	return Poll{
		Attempts:    cmp.Or(p.Attempts, DefaultPoll.Attempts),
		Interval:    cmp.Or(p.Interval, DefaultPoll.Interval),
		MaxInterval: cmp.Or(p.MaxInterval, DefaultPoll.MaxInterval),
	}
}

const opModify = "ModifyInstanceMetadataOptions"

// Modify changes the instance's metadata options: a dry run first (so a refused change
// costs one call and changes nothing), then the call, then DescribeInstances until the
// options are applied, within c's Poll bound.
//
// A nil Instance with an error means nothing was changed. A non-nil Instance with an
// error (KindNotApplied, or the poll's own failure) means the change was accepted but not
// seen applied: the caller must record it as made.
func (c *Client) Modify(ctx context.Context, id string, ch Change) (*Instance, error) {
	if ch.Empty() {
		return nil, &Error{Kind: KindInvalidParameter, Op: opModify, Message: "nothing to change"}
	}
	if ch.HopLimit < 0 || ch.HopLimit > math.MaxInt32 {
		// The API's own check (1 to 64) speaks for the values an int32 carries.
		return nil, &Error{Kind: KindInvalidParameter, Op: opModify, Message: fmt.Sprintf("hop limit %d is out of range (1 to 64)", ch.HopLimit)}
	}
	if _, err := c.Credentials(ctx); err != nil {
		return nil, err
	}
	in := modifyInput(id, ch)
	in.DryRun = aws.Bool(true)
	_, err := c.api.ModifyInstanceMetadataOptions(ctx, in)
	if e := classifyDryRun(err); e != nil {
		return nil, e
	}
	in.DryRun = nil
	out, err := c.api.ModifyInstanceMetadataOptions(ctx, in)
	if err != nil {
		return nil, classify(opModify, err)
	}
	// What the call answered: the options as they will be, still pending.
	sent := &Instance{ID: id, Tags: map[string]string{}}
	if out.InstanceMetadataOptions != nil {
		sent.MetadataOptions = options(out.InstanceMetadataOptions)
	}
	return c.awaitApplied(ctx, id, sent)
}

// classifyDryRun: DryRunOperation is the dry run's success. A dry run answered as a real
// call (no error) is taken as success too: the call that follows sets the same values.
func classifyDryRun(err error) *Error {
	if err == nil {
		return nil
	}
	e := classify(opModify, err)
	if e.Code == dryRunOK {
		return nil
	}
	return e
}

// awaitApplied polls until the options are applied; last is what is known so far.
func (c *Client) awaitApplied(ctx context.Context, id string, last *Instance) (*Instance, error) {
	wait := c.poll.Interval
	for range c.poll.Attempts {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return last, &Error{Kind: KindNotApplied, Op: opDescribe, Err: ctx.Err(),
				Message: fmt.Sprintf("the change was accepted; the run's time ran out before it was applied (%s)", ctx.Err())}
		case <-t.C:
		}
		wait = min(2*wait, c.poll.MaxInterval)
		got, err := c.Describe(ctx, id)
		if err != nil {
			return last, err
		}
		last = got
		if got.MetadataOptions.State == StateApplied {
			return got, nil
		}
	}
	return last, &Error{Kind: KindNotApplied, Op: opDescribe,
		Message: fmt.Sprintf("the change was accepted but its state was still %q after %d checks", last.MetadataOptions.State, c.poll.Attempts)}
}

func modifyInput(id string, ch Change) *ec2.ModifyInstanceMetadataOptionsInput {
	in := &ec2.ModifyInstanceMetadataOptionsInput{
		InstanceId:           aws.String(id),
		HttpEndpoint:         types.InstanceMetadataEndpointState(ch.HTTPEndpoint),
		HttpTokens:           types.HttpTokensState(ch.HTTPTokens),
		HttpProtocolIpv6:     types.InstanceMetadataProtocolState(ch.HTTPProtocolIPv6),
		InstanceMetadataTags: types.InstanceMetadataTagsState(ch.InstanceMetadataTags),
	}
	if ch.HopLimit != 0 {
		in.HttpPutResponseHopLimit = aws.Int32(int32(ch.HopLimit))
	}
	return in
}
