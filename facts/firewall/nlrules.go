package firewall

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Reading one chain's rules over netlink (issue 16). `iptables-nft -S KUBE-SERVICES` spends
// most of its time fetching and decoding the chain's 4,000 rules in libnftnl; the kernel's
// own dump of them, filtered by table and chain, costs a few milliseconds. The attributes
// are walked in place, without copying them into expression structs.

// eachAttr calls f for each netlink attribute in b, with the nested and byte-order flags
// cleared from its type, until f returns false. A truncated attribute ends the walk.
func eachAttr(b []byte, f func(typ uint16, v []byte) bool) {
	for len(b) >= unix.SizeofNlAttr {
		size := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if size < unix.SizeofNlAttr || size > len(b) {
			return
		}
		if !f(typ, b[unix.SizeofNlAttr:size]) {
			return
		}
		next := (size + unix.NLA_ALIGNTO - 1) &^ (unix.NLA_ALIGNTO - 1)
		if next >= len(b) {
			return
		}
		b = b[next:]
	}
}

// attr is the value of the first attribute of type typ in b; nil when there is none.
func attr(b []byte, typ uint16) []byte {
	var out []byte
	eachAttr(b, func(t uint16, v []byte) bool {
		if t == typ {
			out = v
			return false
		}
		return true
	})
	return out
}

// beUint32 reads a big-endian 32-bit attribute; ok is false when it is not 4 bytes.
func beUint32(v []byte) (uint32, bool) {
	if len(v) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(v), true
}

// nftChainRules dumps the rules of one chain (NFT_MSG_GETRULE filtered by table and
// chain) and hands each rule's expression list (NFTA_RULE_EXPRESSIONS) to f, in order. A
// chain that does not exist dumps no rule.
func nftChainRules(family uint8, table, chain string, f func(exprs []byte)) error {
	req := nl.NewNetlinkRequest(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETRULE, unix.NLM_F_DUMP)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: family, Version: unix.NFNETLINK_V0})
	req.AddData(nl.NewRtAttr(unix.NFTA_RULE_TABLE, nl.ZeroTerminated(table)))
	req.AddData(nl.NewRtAttr(unix.NFTA_RULE_CHAIN, nl.ZeroTerminated(chain)))
	err := netfilterDump(req, func(msg []byte) {
		if len(msg) >= nl.SizeofNfgenmsg {
			f(attr(msg[nl.SizeofNfgenmsg:], unix.NFTA_RULE_EXPRESSIONS))
		}
	})
	if err != nil {
		return fmt.Errorf("read nftables chain %s %s: %w", table, chain, err)
	}
	return nil
}

// netlinkTimeout bounds each receive of a dump: the kernel answers at once, so only a
// wedged one waits this long.
const netlinkTimeout = 5 * time.Second

// errDumpInterrupted: the ruleset changed while the kernel dumped it, so the dump may have
// missed or repeated objects.
var errDumpInterrupted = errors.New("the ruleset changed during the dump")

// dumpBuffers are receive buffers; the kernel fills a dump's replies up to 32 KiB each.
var dumpBuffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// netfilterDump sends a request (a dump, or a get asking for an acknowledgement) on a
// netfilter netlink socket of its own and hands each reply's payload to f, receiving into
// one buffer. (vishvananda/netlink copies every
// reply into a new one, which on a kube-proxy node was megabytes of garbage per run.)
func netfilterDump(req *nl.NetlinkRequest, f func(msg []byte)) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(netlinkTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	kernel := &unix.SockaddrNetlink{Family: unix.AF_NETLINK}
	if err := unix.Sendto(fd, req.Serialize(), 0, kernel); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	buf := dumpBuffers.Get().(*[]byte)
	defer dumpBuffers.Put(buf)
	interrupted := false
	for {
		n, _, err := unix.Recvfrom(fd, *buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		for b := (*buf)[:n]; len(b) >= unix.NLMSG_HDRLEN; {
			size := int(binary.NativeEndian.Uint32(b))
			typ := binary.NativeEndian.Uint16(b[4:])
			flags := binary.NativeEndian.Uint16(b[6:])
			seq := binary.NativeEndian.Uint32(b[8:])
			if size < unix.NLMSG_HDRLEN || size > len(b) {
				return errors.New("netlink receive: truncated message")
			}
			payload := b[unix.NLMSG_HDRLEN:size]
			b = b[min(len(b), (size+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
			if seq != req.Seq {
				continue
			}
			interrupted = interrupted || flags&unix.NLM_F_DUMP_INTR != 0
			switch typ {
			case unix.NLMSG_DONE:
				if interrupted {
					return errDumpInterrupted
				}
				return nil
			case unix.NLMSG_ERROR:
				if len(payload) < 4 {
					return errors.New("netlink receive: short error message")
				}
				if errno := int32(binary.NativeEndian.Uint32(payload)); errno != 0 {
					return syscall.Errno(-errno)
				}
				return nil
			default:
				f(payload)
			}
		}
	}
}

// eachExpr calls f with the name and data (NFTA_EXPR_DATA) of each expression of a
// rule's expression list, until f returns false.
func eachExpr(exprs []byte, f func(name, data []byte) bool) {
	eachAttr(exprs, func(typ uint16, elem []byte) bool {
		if typ != unix.NFTA_LIST_ELEM {
			return true
		}
		var name, data []byte
		eachAttr(elem, func(t uint16, v []byte) bool {
			switch t {
			case unix.NFTA_EXPR_NAME:
				name = v
			case unix.NFTA_EXPR_DATA:
				data = v
			}
			return true
		})
		return f(bytes.TrimRight(name, "\x00"), data)
	})
}
