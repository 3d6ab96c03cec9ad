// Package routes is the watch's event source for routing changes: routes and addresses
// added, changed or removed, over rtnetlink. They decide whether and which way IMDS
// traffic leaves, which the route facts and the firewall facts (the out interface rules
// match) describe.
package routes

import (
	"context"
	"errors"
	"fmt"

	"github.com/imdsmend/imdsmend/facts"
	"github.com/vishvananda/netlink"
)

// Source watches the routing tables and interface addresses of this network namespace.
type Source struct{}

// Name implements events.Source.
func (Source) Name() string { return "route" }

// Sections implements events.Source.
func (Source) Sections() []string { return []string{facts.ProbeRoute, facts.ProbeFirewall} }

// Run implements events.Source. When the kernel drops notifications (a burst overflowed
// the socket) it reports a change, since one was lost, and subscribes again; a
// subscription that breaks again before it saw a change ends it.
func (Source) Run(ctx context.Context, changed func()) error {
	for {
		saw, broke, err := watch(ctx, changed)
		switch {
		case err != nil:
			return err
		case ctx.Err() != nil:
			return nil
		case !saw:
			return fmt.Errorf("route notifications fail: %w", broke)
		}
		changed()
	}
}

// watch subscribes and reports changes until ctx ends or the subscription breaks
// (broke); saw says it reported a change. err: it could not subscribe.
func watch(ctx context.Context, changed func()) (saw bool, broke, err error) {
	done := make(chan struct{})
	defer close(done)
	failed := make(chan error, 2)
	onError := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	routes := make(chan netlink.RouteUpdate, 64)
	if err := netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{ErrorCallback: onError}); err != nil {
		return false, nil, fmt.Errorf("subscribe to route changes: %w", err)
	}
	addrs := make(chan netlink.AddrUpdate, 64)
	if err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{ErrorCallback: onError}); err != nil {
		return false, nil, fmt.Errorf("subscribe to address changes: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return saw, nil, nil
		case _, ok := <-routes:
			if !ok {
				return saw, errors.New("the route subscription ended"), nil
			}
		case _, ok := <-addrs:
			if !ok {
				return saw, errors.New("the address subscription ended"), nil
			}
		case err := <-failed:
			return saw, err, nil
		}
		saw = true
		changed()
	}
}
