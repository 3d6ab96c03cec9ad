// Package callers names the processes that talk to IMDS: it samples the TCP sockets to
// 169.254.169.254:80 and [fd00:ec2::254]:80 in /proc/net/tcp and tcp6, maps them to
// processes through the socket inodes in /proc/PID/fd and to systemd units through
// /proc/PID/cgroup, and ranks the processes by the connections seen. It needs neither
// eBPF nor extra packages; the price is that a connection opened and closed between two
// samples goes unseen, so the ranking shows who calls most, not an exact count.
package callers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/imdsmend/imdsmend/internal/paths"
	"golang.org/x/sys/unix"
)

// Callers is what the sampling saw.
type Callers struct {
	Samples       int      `cty:"samples" json:"samples" doc:"How many times the sockets were sampled."`
	WindowSeconds float64  `cty:"window_seconds" json:"window_seconds" doc:"Seconds from the first sample to the last."`
	Connections   int      `cty:"connections" json:"connections" doc:"Distinct TCP connections to IMDS seen, imdsmend's own left out."`
	Unattributed  int      `cty:"unattributed" json:"unattributed" doc:"Connections no process held when sampled (TIME_WAIT, or closed before /proc/PID/fd was read, or a process this user may not inspect)."`
	Top           []Caller `cty:"top" json:"top" doc:"The processes that held the most connections to IMDS, most first (at most 10)."`
}

// Caller is one process holding connections to IMDS.
type Caller struct {
	PID         int    `cty:"pid" json:"pid" doc:"Process ID."`
	Command     string `cty:"command" json:"command" doc:"The process's name (/proc/PID/comm)."`
	UID         int    `cty:"uid" json:"uid" doc:"The process's real user ID."`
	Unit        string `cty:"unit" json:"unit" doc:"The systemd unit (service or scope) whose cgroup holds it; empty outside one."`
	Connections int    `cty:"connections" json:"connections" doc:"Distinct connections to IMDS it held across the samples."`
}

// Config bounds the sampling.
type Config struct {
	Paths paths.Paths
	// Samples after the first, Interval apart, are taken only when there is a caller to
	// rank (see Gather): a quiet instance costs one scan.
	Samples  int
	Interval time.Duration
	// Self is left out of the count (imdsmend's own probe); 0 leaves none out.
	Self int
}

// DefaultConfig samples three times over 200 ms.
func DefaultConfig(p paths.Paths) Config {
	self := 0
	if p.Root == "" || p.Root == "/" {
		self = os.Getpid()
	}
	return Config{Paths: p, Samples: 3, Interval: 100 * time.Millisecond, Self: self}
}

// Bounds on what one sample holds, so thousands of sockets or processes cost memory in
// proportion to the connections to IMDS only, and a runaway count stops.
const (
	maxSockets = 1 << 16 // connections to IMDS remembered
	TopN       = 10
)

// IMDS endpoints as /proc/net/tcp{,6} print a remote address: each 32-bit word in host
// (little-endian) order, in hex, then the port.
var imdsRemote = map[string]bool{}

func init() {
	for _, a := range []string{"169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254"} {
		imdsRemote[ProcAddr(netip.AddrPortFrom(netip.MustParseAddr(a), 80))] = true
	}
}

// ProcAddr formats ap as /proc/net/tcp{,6} do on a little-endian host.
func ProcAddr(ap netip.AddrPort) string {
	b := ap.Addr().AsSlice()
	var s strings.Builder
	for i := 0; i < len(b); i += 4 {
		fmt.Fprintf(&s, "%02X%02X%02X%02X", b[i+3], b[i+2], b[i+1], b[i])
	}
	fmt.Fprintf(&s, ":%04X", ap.Port())
	return s.String()
}

// conn is one connection to IMDS: its local end and socket inode (0 once closed).
type conn struct {
	local string
	inode uint64
}

// churnHint is how many connections to IMDS held by no process (closing, TIME_WAIT) make
// Gather sample again though no process holds one.
const churnHint = 8

// Gather samples the sockets and ranks their processes.
func Gather(ctx context.Context, cfg Config) (*Callers, error) {
	seen := map[conn]bool{}
	held := map[int]*Caller{}            // by PID
	heldConns := map[int]map[conn]bool{} // distinct connections per PID
	attributed := map[conn]bool{}
	c := &Callers{}
	start := time.Now()
	for i := range max(cfg.Samples, 1) {
		if i > 0 {
			// Sample again only when there is a caller to rank: a process held a
			// connection, or enough closed ones show a caller that connects per request.
			// A few closed sockets of an earlier client alone would cost every check the
			// whole window.
			if len(held) == 0 && len(seen)-len(attributed) < churnHint {
				break
			}
			t := time.NewTimer(cfg.Interval)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("sample IMDS callers: %w", ctx.Err())
			case <-t.C:
			}
		}
		conns, err := ScanSockets(cfg.Paths)
		if err != nil {
			return nil, err
		}
		c.Samples++
		c.WindowSeconds = time.Since(start).Seconds()
		if len(conns) == 0 {
			continue
		}
		byInode := make(map[uint64]conn, len(conns))
		for _, cn := range conns {
			if len(seen) < maxSockets {
				seen[cn] = true
			}
			if cn.inode != 0 {
				byInode[cn.inode] = cn
			}
		}
		owners, err := Owners(ctx, cfg.Paths, byInode)
		if err != nil {
			return nil, err
		}
		for pid, inodes := range owners {
			if pid == cfg.Self {
				for _, ino := range inodes {
					delete(seen, byInode[ino]) // imdsmend's own probe
				}
				continue
			}
			if held[pid] == nil {
				p, ok := Describe(cfg.Paths, pid)
				if !ok {
					continue // gone since its fds were read
				}
				held[pid], heldConns[pid] = &p, map[conn]bool{}
			}
			for _, ino := range inodes {
				heldConns[pid][byInode[ino]] = true
				attributed[byInode[ino]] = true
			}
		}
	}
	c.Connections = len(seen)
	for cn := range seen {
		if !attributed[cn] {
			c.Unattributed++
		}
	}
	for pid, p := range held {
		p.Connections = len(heldConns[pid])
		c.Top = append(c.Top, *p)
	}
	slices.SortFunc(c.Top, func(a, b Caller) int {
		if a.Connections != b.Connections {
			return b.Connections - a.Connections
		}
		return a.PID - b.PID
	})
	if len(c.Top) > TopN {
		c.Top = c.Top[:TopN]
	}
	return c, nil
}

// ScanSockets lists the TCP connections to IMDS in /proc/net/tcp and tcp6 (those of the
// reader's network namespace on a live system). Listening sockets are left out.
func ScanSockets(p paths.Paths) ([]conn, error) {
	var out []conn
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(p.File(name))
		if errors.Is(err, os.ErrNotExist) {
			continue // no IPv6
		}
		if err != nil {
			return nil, fmt.Errorf("read the sockets: %w", err)
		}
		out, err = parseSockets(f, out)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
	}
	return out, nil
}

// parseSockets appends the connections to IMDS among the lines of a /proc/net/tcp file.
func parseSockets(r io.Reader, out []conn) ([]conn, error) {
	sc := bufio.NewScanner(r)
	var f [10][]byte // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
	for sc.Scan() {
		if fields(sc.Bytes(), f[:]) < len(f) || !imdsRemote[string(f[2])] || string(f[3]) == "0A" { // 0A: LISTEN
			continue
		}
		inode, err := strconv.ParseUint(string(f[9]), 10, 64)
		if err != nil {
			continue
		}
		if len(out) < maxSockets {
			out = append(out, conn{local: string(f[1]), inode: inode})
		}
	}
	return out, sc.Err()
}

// fields splits line at spaces into the first len(f) fields without allocating (the
// files have a line per socket, thousands of them) and returns how many it found.
func fields(line []byte, f [][]byte) int {
	n := 0
	for n < len(f) {
		line = bytes.TrimLeft(line, " ")
		if len(line) == 0 {
			break
		}
		end := bytes.IndexByte(line, ' ')
		if end < 0 {
			end = len(line)
		}
		f[n], line = line[:end], line[end:]
		n++
	}
	return n
}

// Owners finds, for each process, which of the inodes it holds open, reading the links
// in /proc/PID/fd. A process or fd that vanishes mid-scan, or that this user may not
// read, is skipped.
func Owners(ctx context.Context, p paths.Paths, inodes map[uint64]conn) (map[int][]uint64, error) {
	proc, err := os.Open(p.File("/proc"))
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	defer proc.Close()
	names, err := proc.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	// The scan is syscalls, one process after another: a worker per CPU shortens it.
	workers := min(runtime.GOMAXPROCS(0), 4)
	found := make([]map[int][]uint64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		found[w] = map[int][]uint64{}
		wg.Go(func() {
			var link [64]byte
			buf := make([]byte, 16<<10)
			for i := w; i < len(names); i += workers {
				if i%256 == w && ctx.Err() != nil {
					return
				}
				pid, err := strconv.Atoi(names[i])
				if err != nil {
					continue
				}
				if held := socketsOf(int(proc.Fd()), names[i]+"/fd", inodes, buf, link[:]); len(held) > 0 {
					found[w][pid] = held
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("map sockets to processes: %w", err)
	}
	owners := found[0]
	for _, m := range found[1:] {
		maps.Copy(owners, m)
	}
	return owners, nil
}

// socketsOf lists the wanted socket inodes among the links in one /proc/PID/fd. The
// directory is opened relative to /proc and its links read relative to it, by the names
// getdents wrote (NUL-terminated in buf), so a link costs one syscall and no allocation:
// the scan is thousands of them. A process that is gone or may not be inspected holds none.
func socketsOf(procFD int, fdDir string, inodes map[uint64]conn, buf, link []byte) []uint64 {
	fd, err := unix.Openat(procFD, fdDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	var held []uint64
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil || n <= 0 {
			return held
		}
		// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name NUL-terminated.
		for off := 0; off+19 < n; {
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			if reclen == 0 {
				break
			}
			name := unsafe.Pointer(&buf[off+19])
			off += reclen
			if buf[off-reclen+19] == '.' {
				continue // . and ..
			}
			r, _, errno := unix.Syscall6(unix.SYS_READLINKAT, uintptr(fd), uintptr(name),
				uintptr(unsafe.Pointer(&link[0])), uintptr(len(link)), 0, 0)
			if errno != 0 {
				continue // closed since the listing
			}
			ino, ok := socketInode(link[:r])
			if _, want := inodes[ino]; ok && want {
				held = append(held, ino)
			}
		}
	}
}

// socketInode reads "socket:[12345]".
func socketInode(b []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(b, []byte("socket:["))
	if !ok || len(rest) < 2 || rest[len(rest)-1] != ']' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(rest[:len(rest)-1]), 10, 64)
	return n, err == nil
}

// Describe reads a process's name, user and unit; ok is false when it is gone.
func Describe(p paths.Paths, pid int) (Caller, bool) {
	dir := p.File(filepath.Join("/proc", strconv.Itoa(pid)))
	comm, err := os.ReadFile(dir + "/comm")
	if err != nil {
		return Caller{}, false
	}
	c := Caller{PID: pid, Command: strings.TrimSpace(string(comm)), UID: -1}
	if status, err := os.ReadFile(dir + "/status"); err == nil {
		c.UID = ParseUID(status)
	}
	if cg, err := os.ReadFile(dir + "/cgroup"); err == nil {
		c.Unit = ParseUnit(cg)
	}
	return c, true
}

// ParseUID reads the real user ID from /proc/PID/status; -1 when there is none.
func ParseUID(status []byte) int {
	for line := range bytes.Lines(status) {
		if rest, ok := bytes.CutPrefix(line, []byte("Uid:")); ok {
			f := bytes.Fields(rest)
			if len(f) > 0 {
				if n, err := strconv.Atoi(string(f[0])); err == nil {
					return n
				}
			}
		}
	}
	return -1
}

// unitSuffixes are the systemd unit types a process's cgroup can be named after.
var unitSuffixes = []string{".service", ".scope"}

// ParseUnit reads the systemd unit from /proc/PID/cgroup: the innermost path component
// naming a service or scope, in the unified (v2, "0::") hierarchy or else systemd's
// named one (v1, "name=systemd").
func ParseUnit(cgroup []byte) string {
	var path string
	for line := range bytes.Lines(cgroup) {
		f := strings.SplitN(strings.TrimSpace(string(line)), ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "" || f[1] == "name=systemd" && path == "" {
			path = f[2]
		}
	}
	parts := strings.Split(path, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		for _, s := range unitSuffixes {
			if strings.HasSuffix(parts[i], s) {
				return parts[i]
			}
		}
	}
	return ""
}
