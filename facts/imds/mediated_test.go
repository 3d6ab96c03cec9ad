package imds

import (
	"github.com/imdsmend/imdsmend/internal/types"

	"errors"
	"testing"
)

// TestMediationFor: only a no_route failure against systemd-imdsd's prohibit route and
// fwmark rule is mediated; the daemon's path is probed when this process may mark sockets,
// and reported unverified when it may not.
func TestMediationFor(t *testing.T) {
	errPerm := errors.New("set SO_MARK: operation not permitted")
	errNetlink := errors.New("list routing policy rules: permission denied")
	noRoute := &types.IMDS{Class: types.ClassNoRoute, Stage: types.StageToken}
	tests := []struct {
		name             string
		direct           *types.IMDS
		prohibited, rule bool
		layoutErr        error
		canMark          error
		want             mediation
		wantErr          bool
		asksLayout       bool
	}{
		{name: "reachable directly", direct: &types.IMDS{Reachable: true, Class: types.ClassOK}, prohibited: true, rule: true, want: mediationNone},
		{name: "refused, not routed", direct: &types.IMDS{Class: types.ClassConnectionRefused}, prohibited: true, rule: true, want: mediationNone},
		{name: "timeout", direct: &types.IMDS{Class: types.ClassTimeout}, prohibited: true, rule: true, want: mediationNone},
		{name: "prohibit route and fwmark rule", direct: noRoute, prohibited: true, rule: true, want: mediationMarked, asksLayout: true},
		{name: "mediated, but marking not permitted", direct: noRoute, prohibited: true, rule: true, canMark: errPerm, want: mediationUnverified, asksLayout: true},
		{name: "prohibit route without the rule is a blocker", direct: noRoute, prohibited: true, want: mediationNone, asksLayout: true},
		{name: "rule, but no prohibit route (unreachable, no route)", direct: noRoute, rule: true, want: mediationNone, asksLayout: true},
		{name: "neither", direct: noRoute, want: mediationNone, asksLayout: true},
		{name: "rules unreadable", direct: noRoute, prohibited: true, layoutErr: errNetlink, want: mediationNone, wantErr: true, asksLayout: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked := false
			got, err := mediationFor(tt.direct, func() (bool, bool, error) {
				asked = true
				return tt.prohibited, tt.rule, tt.layoutErr
			}, func() error { return tt.canMark })
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("mediationFor = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
			if asked != tt.asksLayout {
				t.Errorf("layout asked: %v, want %v (only a no_route failure needs it)", asked, tt.asksLayout)
			}
		})
	}
}
