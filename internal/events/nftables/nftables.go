// Package nftables is the watch's event source for packet filter changes: nftables
// announces every committed transaction to the NFNLGRP_NFTABLES netlink group, and
// iptables-nft changes its rules through nftables, so one subscription sees both. (Legacy
// iptables tables are polled by package iptlegacy.)
package nftables

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/imdsmend/imdsmend/facts"
	"golang.org/x/sys/unix"
)

// Source watches nftables transactions in this network namespace.
type Source struct{}

// Name implements events.Source.
func (Source) Name() string { return "nftables" }

// Sections implements events.Source.
func (Source) Sections() []string { return []string{facts.ProbeFirewall} }

// newGen ends every committed transaction's notifications: one change per transaction,
// however many rules it touched.
const newGen = unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWGEN

// Run implements events.Source. A socket overrun (ENOBUFS: notifications were lost in a
// burst) counts as a change.
func (Source) Run(ctx context.Context, changed func()) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_NETFILTER)
	if err != nil {
		return fmt.Errorf("open a netfilter netlink socket: %w", err)
	}
	sa := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (unix.NFNLGRP_NFTABLES - 1)}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return fmt.Errorf("join the nftables notification group: %w", err)
	}
	// Non-blocking, the file reads through the runtime's poller, so a deadline ends a read.
	f := os.NewFile(uintptr(fd), "nftables notifications")
	defer f.Close()
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 1<<16)
	for {
		n, err := f.Read(buf)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, unix.ENOBUFS):
			changed()
			continue
		case err != nil:
			return fmt.Errorf("read nftables notifications: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("read nftables notifications: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type == newGen {
				changed()
			}
		}
	}
}
