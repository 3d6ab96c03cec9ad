package ec2api

import (
	"context"
	"errors"
	"fmt"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Kind is what went wrong with a call, in the terms a finding needs: who must change what.
// Kinds are part of imdsmend's contract (findings and the fleet report name them).
type Kind string

// Kinds of failure.
const (
	// KindNoRegion: the instance's region is unknown.
	KindNoRegion Kind = "no_region"
	// KindNoCredentials: no credential source has any (or none that works without IMDS).
	KindNoCredentials Kind = "no_credentials"
	// KindAuthFailure: the credentials were refused (unknown key, bad signature, expired).
	KindAuthFailure Kind = "auth_failure"
	// KindUnauthorized: the credentials may not make this call (IAM: UnauthorizedOperation).
	KindUnauthorized Kind = "unauthorized"
	// KindTokensEnforced: the account enforces IMDSv2 (HttpTokensEnforced), so tokens
	// can't be made optional.
	KindTokensEnforced Kind = "http_tokens_enforced"
	// KindDeclarativePolicy: an organization's declarative policy manages these settings.
	KindDeclarativePolicy Kind = "declarative_policy"
	// KindUnsupported: the instance or the call does not support the change
	// (UnsupportedOperation).
	KindUnsupported Kind = "unsupported"
	// KindThrottled: the API kept throttling after the retries with backoff.
	KindThrottled Kind = "throttled"
	// KindNotFound: no such instance in this region (InvalidInstanceID.NotFound or
	// .Malformed): a wrong instance ID or a wrong region.
	KindNotFound Kind = "instance_not_found"
	// KindInvalidParameter: a value the API refused (InvalidParameterValue, e.g. a hop
	// limit out of 1–64).
	KindInvalidParameter Kind = "invalid_parameter"
	// KindMalformed: a response imdsmend could not read, or one missing what it must hold.
	KindMalformed Kind = "malformed_response"
	// KindNotApplied: the change was accepted but not applied within the poll's bound.
	KindNotApplied Kind = "not_applied"
	// KindUnreachable: the endpoint could not be reached (network, DNS, timeout).
	KindUnreachable Kind = "unreachable"
	// KindOther: any other error the API returned.
	KindOther Kind = "other"
)

// Ops of failures before any call: building the client, finding credentials (not named
// "credentials": a "credentials: …" message is masked as a secret in logs).
const (
	OpConfigure    = "Configure"
	OpAuthenticate = "Authenticate"
)

// Error is a failed call.
type Error struct {
	Kind Kind
	// Op is the operation: "DescribeInstances", "ModifyInstanceMetadataOptions", …
	Op string
	// Code is the API's error code ("UnauthorizedOperation"), empty when none came back.
	Code string
	// Message is the API's message or imdsmend's explanation.
	Message   string
	RequestID string
	Err       error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("ec2 " + e.Op + ": ")
	if e.Code != "" {
		b.WriteString(e.Code + ": ")
	}
	b.WriteString(e.Message)
	if e.RequestID != "" {
		b.WriteString(" (request " + e.RequestID + ")")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Hint says who must change what so the call can succeed; empty when there is nothing
// the caller can do but try later.
func (e *Error) Hint() string {
	switch e.Kind {
	case KindNoRegion:
		return "set AWS_REGION in imdsmend's environment or settings.ec2.region in the policy"
	case KindNoCredentials:
		return "give imdsmend credentials that don't need IMDS (environment, shared profile, web identity) or settings.ec2.role_arn on top of them"
	case KindAuthFailure:
		return "the credentials were refused: replace them (expired session, deleted key, wrong clock)"
	case KindUnauthorized:
		return "an IAM administrator must allow " + iamAction(e.Op) + " to the credentials imdsmend uses (docs/ec2-api.md has the minimal policy); imdsmend will not retry"
	case KindTokensEnforced:
		return "the account enforces IMDSv2 (HttpTokensEnforced): IMDSv1 callers must move to tokens; only the account's administrator can lift the enforcement"
	case KindDeclarativePolicy:
		return "an AWS Organizations declarative policy manages the instance metadata settings: its owner must change the policy"
	case KindUnsupported:
		return "the instance does not support this change; change it at launch (launch template) or on the AMI instead"
	case KindThrottled:
		return "the EC2 API throttled the calls after retries with backoff; the next run tries again"
	case KindNotFound:
		return "no such instance in this region: check the instance ID and region imdsmend found (facts.identity) and their sources"
	case KindInvalidParameter:
		return "the API refused a value: fix the remediate block's arguments (hop_limit is 1 to 64)"
	case KindMalformed:
		return "the EC2 endpoint's answer could not be read: check AWS_ENDPOINT_URL_EC2 and any proxy in between"
	case KindNotApplied:
		return "the change was accepted but not yet applied; the next run looks again (undo reverts it)"
	case KindUnreachable:
		return "the EC2 API endpoint could not be reached: check the network path, proxy and AWS_ENDPOINT_URL_EC2"
	}
	return ""
}

// KindOf returns err's Kind, KindOther for an error of another type, "" for nil.
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindOther
}

func iamAction(op string) string {
	if op == "" {
		return "the EC2 calls"
	}
	return "ec2:" + op
}

// dryRunOK is the code with which a dry run says the call would have succeeded.
const dryRunOK = "DryRunOperation"

// classify turns an SDK error from op into an *Error.
func classify(op string, err error) *Error {
	e := &Error{Kind: KindOther, Op: op, Message: short(err.Error()), Err: err}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		e.RequestID = re.ServiceRequestID()
	}
	var api smithy.APIError
	var deser *smithy.DeserializationError
	var send *smithyhttp.RequestSendError
	switch {
	case errors.As(err, &api):
		e.Code, e.Message = api.ErrorCode(), short(api.ErrorMessage())
		e.Kind = kindOfCode(e.Code, e.Message)
	case errors.As(err, &deser):
		e.Kind = KindMalformed
		e.Message = "the response could not be read: " + short(deser.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.As(err, &send):
		e.Kind = KindUnreachable
	}
	return e
}

// kindOfCode maps the EC2 API's error codes (and the message where the code is shared).
func kindOfCode(code, msg string) Kind {
	lower := strings.ToLower(msg)
	switch {
	case strings.Contains(lower, "declarative polic"):
		return KindDeclarativePolicy
	case code == "UnauthorizedOperation" || strings.HasPrefix(code, "AccessDenied"):
		return KindUnauthorized
	case code == "AuthFailure" || code == "InvalidClientTokenId" || code == "SignatureDoesNotMatch" ||
		code == "ExpiredToken" || code == "RequestExpired" || code == "InvalidAccessKeyId":
		return KindAuthFailure
	case code == "UnsupportedOperation" && strings.Contains(lower, "httptokensenforced"):
		return KindTokensEnforced
	case code == "UnsupportedOperation":
		return KindUnsupported
	case code == "RequestLimitExceeded" || code == "Throttling" || code == "ThrottlingException" || code == "RequestThrottled":
		return KindThrottled
	case strings.HasPrefix(code, "InvalidInstanceID"):
		return KindNotFound
	case code == "InvalidParameterValue" || code == "InvalidParameterCombination" || code == "InvalidParameter" || code == "MissingParameter":
		return KindInvalidParameter
	}
	return KindOther
}

// malformed is a response that parsed but lacks what it must hold.
func malformed(op, format string, args ...any) *Error {
	return &Error{Kind: KindMalformed, Op: op, Message: fmt.Sprintf(format, args...)}
}
