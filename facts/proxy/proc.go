package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/imdsmend/imdsmend/internal/paths"
)

// Bounds for reading /proc: an environment is at most a few hundred KiB in practice
// (ARG_MAX shared with argv), a cgroup file a few lines.
const (
	maxEnviron = 1 << 20
	maxCgroup  = 64 << 10
	maxComm    = 256
	maxStat    = 64 << 10
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's start time: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

type procScan struct {
	sources          []Source
	read, unreadable int
	// stuck lists the environ files skipped because a read of an earlier scan is still
	// blocked in the kernel.
	stuck []string
}

// scanProcesses reads the environment of every process under root's /proc and groups the
// ones that set a proxy by unit and proxy environment, so a service with fifty workers is
// one source. A missing /proc (a test tree) means no processes.
func scanProcesses(ctx context.Context, p paths.Paths, conf *Config, hosts []string) (procScan, error) {
	var scan procScan
	procDir := p.File(paths.ProcDir)
	pids, err := listPIDs(procDir)
	if err != nil {
		return scan, err
	}
	self := -1
	if p.Root == "/" {
		// imdsmend's own IMDS client never uses a proxy, whatever its environment says.
		self = os.Getpid()
	}
	reader := newEnvironReader()
	defer reader.close()
	groups := map[string]int{} // key → index in scan.sources
	boot := bootTime(readSmall(path.Join(procDir, "stat"), maxStat))
	for _, pid := range pids {
		if err := ctx.Err(); err != nil {
			return scan, err
		}
		if pid == self {
			continue
		}
		base := path.Join(procDir, strconv.Itoa(pid))
		env, err := reader.read(ctx, path.Join(base, "environ"))
		switch {
		case errors.Is(err, errReadStuck):
			scan.stuck = append(scan.stuck, path.Join(paths.ProcDir, strconv.Itoa(pid), "environ"))
			continue
		case err != nil && ctx.Err() != nil:
			return scan, ctx.Err()
		case errors.Is(err, fs.ErrPermission):
			scan.unreadable++
			continue
		case err != nil:
			continue // the process ended, or is a kernel thread
		}
		scan.read++
		if _, g := firstSet(env, EnvHTTPProxy, EnvHTTPProxyUC, EnvHTTPSProxy, EnvHTTPSProxyUC, EnvAllProxy, EnvAllProxyUC); g == "" {
			continue
		}
		stat := statFields(path.Join(base, "stat"))
		if self > 0 && parentPID(stat) == self {
			// The iptables-save or nft a probe runs right now inherits imdsmend's
			// environment and asks no IMDS; listing it would make the finding flicker.
			continue
		}
		unit := unitOfCgroup(readSmall(path.Join(base, "cgroup"), maxCgroup))
		command := strings.TrimSpace(string(readSmall(path.Join(base, "comm"), maxComm)))
		key := unit + "\x00" + envKey(env)
		if unit == "" {
			key = command + key
		}
		if i, ok := groups[key]; ok {
			s := &scan.sources[i]
			s.PIDs = append(s.PIDs, pid)
			s.Name = processName(s.Command, s.PIDs, s.Unit)
			continue
		}
		s := processSource(pid, command, unit, env, hosts)
		if s.Leaks && strings.HasSuffix(unit, ".service") {
			s.RestartFixes = restartFixes(conf, unit, hosts, procStart(stat, boot))
		}
		groups[key] = len(scan.sources)
		scan.sources = append(scan.sources, s)
	}
	return scan, nil
}

// listPIDs lists the processes in procDir, in order; none when there is no procDir.
func listPIDs(procDir string) ([]int, error) {
	dir, err := os.Open(procDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names, err := dir.Readdirnames(-1)
	dir.Close()
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// processSource describes the first process of a group: its proxy variables and whether
// requests to hosts would go to the proxy.
func processSource(pid int, command, unit string, env map[string]string, hosts []string) Source {
	s := Source{Kind: KindProcess, Path: path.Join(paths.ProcDir, strconv.Itoa(pid), "environ"),
		Unit: unit, PIDs: []int{pid}, Command: command, Clients: []string{}, Hosts: []string{}}
	s.Name = processName(command, s.PIDs, unit)
	for _, v := range append(slices.Clone(Vars), NoProxyVars...) {
		if _, ok := env[v]; ok {
			s.Variables = append(s.Variables, v)
		}
	}
	uses := IMDSProxyUses(env, hosts)
	if len(uses) == 0 {
		s.showSettings(env)
		return s
	}
	l := newLeakInfo()
	for _, u := range uses {
		l.add(u)
	}
	l.show(&s, hosts)
	return s
}

// openProc opens a /proc file for reading; tests replace it with a reader that blocks.
var openProc = func(name string) (io.ReadCloser, error) { return os.Open(name) }

// errReadStuck is a file that a read of an earlier scan, abandoned there, still blocks in.
var errReadStuck = errors.New("an earlier read is still blocked")

// environReads tracks the environ reads under way in every scan. Reading
// /proc/PID/environ blocks while that process's memory map is locked (a process in D
// state, hung on NFS), and no context cancels the read: a scan that gives up abandons its
// reader goroutine, with its descriptor and buffer, until the kernel lets go. Later scans
// skip a file whose read is still under way, so each has at most one read outstanding
// rather than one per pass.
var environReads = struct {
	sync.Mutex
	files map[string]bool
	// live counts the reader goroutines alive and readers waits for them, for tests.
	live    atomic.Int64
	readers sync.WaitGroup
}{files: map[string]bool{}}

// environReader reads environ files on a goroutine of its own, so a scan waits for a
// read only as long as its context allows.
type environReader struct {
	requests chan environRequest
	done     chan struct{}
}

type environRequest struct {
	file  string
	reply chan environReply // buffered: an abandoned reader never blocks on it
}

type environReply struct {
	env map[string]string
	err error
}

func newEnvironReader() *environReader {
	r := &environReader{requests: make(chan environRequest), done: make(chan struct{})}
	environReads.readers.Add(1)
	environReads.live.Add(1)
	go func() {
		defer environReads.readers.Done()
		defer environReads.live.Add(-1)
		defer close(r.done)
		buf := make([]byte, 64<<10) // reused: one read per environment in the usual case
		for req := range r.requests {
			env, err := readEnviron(req.file, &buf)
			environReads.Lock()
			delete(environReads.files, req.file)
			environReads.Unlock()
			req.reply <- environReply{env, err}
		}
	}()
	return r
}

// read returns the proxy variables of file, or ctx's error when it ends first (the read
// goes on, abandoned), or errReadStuck when an abandoned read of file is still under way.
func (r *environReader) read(ctx context.Context, file string) (map[string]string, error) {
	environReads.Lock()
	if environReads.files[file] {
		environReads.Unlock()
		return nil, errReadStuck
	}
	environReads.files[file] = true
	environReads.Unlock()
	req := environRequest{file, make(chan environReply, 1)}
	r.requests <- req
	select {
	case rep := <-req.reply:
		return rep.env, rep.err
	case <-ctx.Done():
		r.done = nil // abandoned: close must not wait for it
		return nil, ctx.Err()
	}
}

// close ends the reader: at once when idle, or after the abandoned read returns.
func (r *environReader) close() {
	close(r.requests)
	if r.done != nil {
		<-r.done
	}
}

// readEnviron returns the proxy variables of a NUL-separated environment file, reading it
// into *buf (grown up to maxEnviron as needed).
func readEnviron(file string, buf *[]byte) (map[string]string, error) {
	f, err := openProc(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n := 0
	for {
		m, err := f.Read((*buf)[n:])
		n += m
		if err == io.EOF || (err == nil && m == 0) {
			break
		}
		if errors.Is(err, syscall.ESRCH) {
			return nil, fs.ErrNotExist
		}
		if err != nil {
			return nil, err
		}
		if n == len(*buf) {
			if n >= maxEnviron {
				break // bounded: the variables past here are not read
			}
			*buf = append(*buf, make([]byte, n)...)
		}
	}
	data := (*buf)[:n]
	env := map[string]string{}
	for len(data) > 0 {
		entry := data
		if i := bytes.IndexByte(data, 0); i >= 0 {
			entry, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		// Cheap test first: every variable of interest ends in "proxy" or "PROXY".
		eq := bytes.IndexByte(entry, '=')
		if eq < 5 || !bytes.EqualFold(entry[eq-5:eq], []byte("proxy")) {
			continue
		}
		if name := string(entry[:eq]); isProxyVar(name) {
			env[name] = string(entry[eq+1:])
		}
	}
	return env, nil
}

// envKey is a stable text form of env for grouping.
func envKey(env map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(env)) {
		b.WriteString(k + "=" + env[k] + "\x00")
	}
	return b.String()
}

// restartFixes reports whether restarting unit would end a leak of its process started at
// start: the unit's files set the proxy, and either they still leak (no_proxy is about to
// fix them) or they changed after the process started. A process started after its unit's
// files were last changed got all they give; restarting it again would change nothing,
// and a watch loop would restart it forever.
func restartFixes(conf *Config, unit string, hosts []string, start time.Time) bool {
	env := conf.UnitEnv(unit)
	if !ProxySet(env) {
		return false
	}
	if len(IMDSProxyUses(env, hosts)) > 0 || start.IsZero() {
		return true
	}
	return start.Before(conf.UnitChanged(unit))
}

// bootTime reads btime from /proc/stat; zero when unknown.
func bootTime(stat []byte) time.Time {
	for _, line := range strings.Split(string(stat), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			if sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return time.Unix(sec, 0)
			}
		}
	}
	return time.Time{}
}

// procStart is when a process started, from field 22 of /proc/PID/stat (starttime, clock
// ticks since boot; index 19 of statFields); zero when unknown.
func procStart(stat []string, boot time.Time) time.Time {
	if boot.IsZero() || len(stat) < 20 {
		return time.Time{}
	}
	ticks, err := strconv.ParseInt(stat[19], 10, 64)
	if err != nil {
		return time.Time{}
	}
	return boot.Add(time.Duration(ticks) * time.Second / clockTicks)
}

// statFields are the fields of /proc/PID/stat after the command name (which may hold
// blanks and parentheses): state, ppid, … starttime at index 19. Nil on any error.
func statFields(file string) []string {
	stat := string(readSmall(file, maxStat))
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(stat[i+1:])
}

// parentPID is the ppid of statFields, -1 when unknown.
func parentPID(stat []string) int {
	if len(stat) < 2 {
		return -1
	}
	ppid, err := strconv.Atoi(stat[1])
	if err != nil {
		return -1
	}
	return ppid
}

// readSmall reads at most limit bytes of a file, nil on any error.
func readSmall(file string, limit int64) []byte {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	data, _ := io.ReadAll(io.LimitReader(f, limit))
	return data
}

// SelfUnit is the systemd unit this process runs in (as systemd started it, with
// $INVOCATION_ID set), or "" outside any service.
func SelfUnit() string {
	return unitOfCgroup(readSmall("/proc/self/cgroup", maxCgroup))
}

// unitOfCgroup finds the systemd unit in /proc/PID/cgroup content: the first path
// component of the unified (0::) or name=systemd hierarchy that is not a slice, as
// systemd's cg_path_get_unit does ("/system.slice/docker.service" → docker.service).
func unitOfCgroup(data []byte) string {
	var cgPath string
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			cgPath = parts[2]
			break
		}
		if parts[1] == "name=systemd" {
			cgPath = parts[2]
		}
	}
	for _, c := range strings.Split(cgPath, "/") {
		if c == "" || strings.HasSuffix(c, ".slice") {
			continue
		}
		if strings.Contains(c, ".") {
			return c
		}
		return ""
	}
	return ""
}
