package firewall

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// A watch pass reads the firewall again whenever anything may have changed; most of the
// time nothing has. The kernel tells cheaply whether it did: nftables counts every
// committed transaction in its generation id (iptables-nft's changes included), and a
// legacy table, which has no such id, is one getsockopt away from a checksum of its rules
// without their counters. Together with what else Read's answer depends on (the route
// IMDS traffic takes, the user and group files owner matches name, the settings, the
// network namespace) that is a generation: equal generations read the same facts.

// generation is what Read's result depends on, each part cheap to read.
type generation struct {
	netns  uint64    // the network namespace's inode
	nft    uint32    // nftables' generation id
	legacy [2]uint64 // checksums of the legacy IPv4 and IPv6 tables
	// packets are the IMDS packets of each family as the routes make them.
	packets [2]packet
	users   [2]fileStamp // /etc/passwd and /etc/group under the root
	sources uint64       // the rules files sources are found in (source.go)
	root    string
	ipv6    bool
}

// fileStamp tells a file's versions apart without reading it.
type fileStamp struct {
	ino, size    uint64
	mtime, ctime syscall.Timespec
}

// currentGeneration reads the generation; an error means it can't tell, so Read must read.
func currentGeneration(cfg Config) (generation, error) {
	g := generation{root: cfg.Paths.Root, ipv6: cfg.IPv6}
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return g, fmt.Errorf("identify the network namespace: %w", err)
	}
	g.netns = st.Ino
	var err error
	if g.nft, err = nftGeneration(); err != nil {
		return g, err
	}
	if g.legacy, err = LegacyChecksums(); err != nil {
		return g, err
	}
	pk := routePackets()
	g.packets = [2]packet{pk["ipv4"], pk["ipv6"]}
	for i, f := range []string{passwdFile, groupFile} {
		if syscall.Stat(cfg.Paths.File(f), &st) == nil {
			g.users[i] = fileStamp{st.Ino, uint64(st.Size), st.Mtim, st.Ctim}
		}
	}
	g.sources = sourcesStamp(cfg.Paths)
	return g, nil
}

// nftGeneration asks nftables for its generation id (NFT_MSG_GETGEN).
func nftGeneration() (uint32, error) {
	req := nl.NewNetlinkRequest(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETGEN, unix.NLM_F_ACK)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: unix.AF_UNSPEC, Version: unix.NFNETLINK_V0})
	var gen uint32
	found := false
	err := netfilterDump(req, func(m []byte) {
		if len(m) >= nl.SizeofNfgenmsg && !found {
			gen, found = beUint32(attr(m[nl.SizeofNfgenmsg:], unix.NFTA_GEN_ID))
		}
	})
	switch {
	case err != nil:
		return 0, fmt.Errorf("read the nftables generation: %w", err)
	case !found:
		return 0, errors.New("read the nftables generation: no generation id in the answer")
	}
	return gen, nil
}

// legacyFamily is how the kernel hands one family's legacy tables out (ipt_get_entries,
// ip6t_get_entries): the entries' size and where each keeps its counters and the offset
// of the next.
type legacyFamily struct {
	names        string // the /proc file listing the tables
	domain       int
	level        int
	entrySize    int // sizeof(struct ipt_entry) or (struct ip6t_entry)
	nextOffset   int // offsetof(next_offset)
	countersFrom int // offsetof(counters), 16 bytes of packet and byte counts
}

var legacyFamilies = [2]legacyFamily{
	{"/proc/thread-self/net/ip_tables_names", unix.AF_INET, unix.SOL_IP, 112, 90, 96},
	{"/proc/thread-self/net/ip6_tables_names", unix.AF_INET6, unix.SOL_IPV6, 168, 142, 152},
}

// The getsockopt calls of ip_tables and ip6_tables (IPT_SO_GET_INFO and _ENTRIES; IPv6
// uses the same numbers at its own level).
const (
	soGetInfo    = 64
	soGetEntries = 65
	tableNameLen = 32
	getInfoSize  = tableNameLen + 4 + 5*4 + 5*4 + 4 + 4 // struct ipt_getinfo
	entriesFrom  = tableNameLen + 8                     // struct ipt_get_entries, padded
)

// checksumSeed keys the checksums: they are compared within one process only.
var checksumSeed = maphash.MakeSeed()

// LegacyChecksums returns a checksum of the legacy iptables tables of each family (IPv4,
// IPv6) in this network namespace, counters left out so traffic does not change it; 0 for
// a family without legacy tables. It reads the tables straight from the kernel, without
// the xtables lock: the kernel hands a table out whole.
func LegacyChecksums() ([2]uint64, error) {
	var sums [2]uint64
	for i, fam := range legacyFamilies {
		data, err := os.ReadFile(fam.names)
		if errors.Is(err, os.ErrNotExist) {
			continue // the module is not loaded: no tables
		}
		if err != nil {
			return sums, fmt.Errorf("list legacy tables: %w", err)
		}
		names := strings.Fields(string(data))
		if len(names) == 0 {
			continue
		}
		slices.Sort(names)
		var h maphash.Hash
		h.SetSeed(checksumSeed)
		if err := fam.checksum(&h, names); err != nil {
			return sums, err
		}
		sums[i] = h.Sum64() | 1 // never 0, which means no tables
	}
	return sums, nil
}

func (fam legacyFamily) checksum(h *maphash.Hash, names []string) error {
	fd, err := unix.Socket(fam.domain, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return fmt.Errorf("open a socket to read legacy tables: %w", err)
	}
	defer unix.Close(fd)
	for _, name := range names {
		entries, err := fam.entries(fd, name)
		if err != nil {
			return fmt.Errorf("read legacy table %s: %w", name, err)
		}
		h.WriteString(name)
		h.WriteByte(0)
		for off := 0; off+fam.entrySize <= len(entries); {
			next := int(binary.NativeEndian.Uint16(entries[off+fam.nextOffset:]))
			if next < fam.entrySize || off+next > len(entries) {
				return fmt.Errorf("read legacy table %s: entry at %d has size %d", name, off, next)
			}
			clear(entries[off+fam.countersFrom : off+fam.countersFrom+16])
			off += next
		}
		h.Write(entries)
	}
	return nil
}

// entries reads one table's entries; a table replaced between the two calls (its size
// changed) is read again.
func (fam legacyFamily) entries(fd int, name string) ([]byte, error) {
	for range 5 {
		info := make([]byte, getInfoSize)
		copy(info, name)
		if err := getsockopt(fd, fam.level, soGetInfo, info); err != nil {
			return nil, err
		}
		size := binary.NativeEndian.Uint32(info[getInfoSize-4:])
		buf := make([]byte, entriesFrom+int(size))
		copy(buf, name)
		binary.NativeEndian.PutUint32(buf[tableNameLen:], size)
		err := getsockopt(fd, fam.level, soGetEntries, buf)
		if errors.Is(err, unix.EAGAIN) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[entriesFrom:], nil
	}
	return nil, errors.New("the table kept changing while read")
}

func getsockopt(fd, level, opt int, buf []byte) error {
	n := uint32(len(buf))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// Memo reads the firewall facts again only when their generation changed since the last
// Read through it; a watch pass keeps one for the life of its policy. The zero value is
// ready; a nil Memo reads every time.
type Memo struct {
	// read is Read; tests count the reads.
	read func(ctx context.Context, cfg Config) (*Firewall, error)
	mu   sync.Mutex
	gen  generation
	fw   *Firewall
}

// Read is firewall.Read, or the facts of the previous call when nothing they depend on
// changed. The generation is read before the rules: a change while they are read leaves
// the next call a generation that differs.
func (m *Memo) Read(ctx context.Context, cfg Config) (*Firewall, error) {
	if m == nil {
		return Read(ctx, cfg)
	}
	gen, genErr := currentGeneration(cfg)
	m.mu.Lock()
	if genErr == nil && m.fw != nil && m.gen == gen {
		fw := m.fw.clone()
		m.mu.Unlock()
		return fw, nil
	}
	m.fw = nil
	m.mu.Unlock()
	read := m.read
	if read == nil {
		read = Read
	}
	fw, err := read(ctx, cfg)
	if err != nil || genErr != nil {
		return fw, err
	}
	m.mu.Lock()
	m.gen, m.fw = gen, fw.clone()
	m.mu.Unlock()
	return fw, nil
}

// clone copies the facts so a caller's changes to its copy reach no other pass.
func (fw *Firewall) clone() *Firewall {
	return &Firewall{Rules: slices.Clone(fw.Rules), Sources: slices.Clone(fw.Sources)}
}
