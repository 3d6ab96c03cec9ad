package harness

import (
	"fmt"
	"strings"
)

// Hop is the layout of an EC2 instance as IMDS sees it: IMDS in its own namespace, the
// instance (Host) one veth hop away, and containers one forwarded, masqueraded hop behind
// the Host, as Docker's bridge puts them. Hop limits, firewall front ends that accept
// everything on lo (UFW) and boots that must reach IMDS over an interface need this; the
// plain Namespace serves IMDS on its own loopback.
//
//	Container[i] eth0 10.201.i.2/30 ──▶ Host ctr<i> 10.201.i.1  (forward + MASQUERADE)
//	Host eth0 10.200.0.2/30, fd00:200::2/64 ──▶ IMDS veth-host 10.200.0.1, fd00:200::1
//	IMDS lo: 169.254.169.254/32, fd00:ec2::254/128
type Hop struct {
	IMDS       *Namespace
	Host       *Namespace
	Containers []*Namespace
}

// Addresses of the layout, for tests that reach past IMDS (another listener in the IMDS
// namespace) or name the Host's interface.
const (
	HopIMDSPeer   = "10.200.0.1"
	HopHostAddr   = "10.200.0.2"
	HopIMDSPeer6  = "fd00:200::1"
	HopHostAddr6  = "fd00:200::2"
	HopHostIface  = "eth0"
	hopContainers = "10.201.0.0/16"
)

// HopContainerAddr is container i's address (its gateway on the Host ends in .1).
func HopContainerAddr(i int) string { return fmt.Sprintf("10.201.%d.2", i) }

// NewHop builds the layout with the given number of containers. Close removes it all.
func NewHop(containers int) (*Hop, error) {
	if containers < 0 || containers > 255 {
		return nil, fmt.Errorf("hop: %d containers, want 0–255", containers)
	}
	h := &Hop{}
	var err error
	if h.IMDS, err = NewNamespace(); err != nil {
		return nil, err
	}
	if h.Host, err = newNamespace(); err != nil {
		h.Close()
		return nil, err
	}
	err = h.IMDS.ip(
		[]string{"link", "add", "veth-host", "type", "veth", "peer", "name", HopHostIface, "netns", h.Host.Name},
		[]string{"addr", "add", HopIMDSPeer + "/30", "dev", "veth-host"},
		[]string{"-6", "addr", "add", HopIMDSPeer6 + "/64", "dev", "veth-host", "nodad"},
		[]string{"link", "set", "veth-host", "up"},
	)
	if err == nil {
		// IMDS through the default gateway, as on EC2: a test that removes a route to IMDS
		// removes the default.
		err = h.Host.ip(
			[]string{"addr", "add", HopHostAddr + "/30", "dev", HopHostIface},
			[]string{"-6", "addr", "add", HopHostAddr6 + "/64", "dev", HopHostIface, "nodad"},
			[]string{"link", "set", HopHostIface, "up"},
			[]string{"route", "add", "default", "via", HopIMDSPeer, "dev", HopHostIface},
			[]string{"-6", "route", "add", "default", "via", HopIMDSPeer6, "dev", HopHostIface},
		)
	}
	if err == nil && containers > 0 {
		err = h.addContainers(containers)
	}
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("hop layout: %w", err)
	}
	return h, nil
}

func (h *Hop) addContainers(count int) error {
	// Docker's own rule: containers leave with the Host's address, so IMDS needs no route
	// back to them and their packets cross one forwarding hop (TTL - 1).
	if err := run("ip", "netns", "exec", h.Host.Name, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"); err != nil {
		return err
	}
	if err := run("ip", "netns", "exec", h.Host.Name, "iptables", "-w", "-t", "nat", "-A", "POSTROUTING",
		"-s", hopContainers, "-o", HopHostIface, "-j", "MASQUERADE"); err != nil {
		return err
	}
	for i := range count {
		c, err := newNamespace()
		if err != nil {
			return err
		}
		h.Containers = append(h.Containers, c)
		gw := strings.TrimSuffix(HopContainerAddr(i), ".2") + ".1"
		hostSide := fmt.Sprintf("ctr%d", i)
		if err := h.Host.ip(
			[]string{"link", "add", hostSide, "type", "veth", "peer", "name", "eth0", "netns", c.Name},
			[]string{"addr", "add", gw + "/30", "dev", hostSide},
			[]string{"link", "set", hostSide, "up"},
		); err != nil {
			return err
		}
		if err := c.ip(
			[]string{"addr", "add", HopContainerAddr(i) + "/30", "dev", "eth0"},
			[]string{"link", "set", "eth0", "up"},
			[]string{"route", "add", "default", "via", gw, "dev", "eth0"},
		); err != nil {
			return err
		}
	}
	return nil
}

// Close stops every process in the layout's namespaces and deletes them (their veths go
// with them).
func (h *Hop) Close() {
	for _, c := range h.Containers {
		c.Close()
	}
	for _, n := range []*Namespace{h.Host, h.IMDS} {
		if n != nil {
			n.Close()
		}
	}
}
