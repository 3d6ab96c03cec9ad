package proxy

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/imdsmend/imdsmend/internal/paths"
)

// Kinds of proxy sources (facts.proxy.sources[*].kind).
const (
	KindEnvironment = "environment_file"
	KindProfile     = "profile"
	KindManager     = "systemd_manager"
	KindUnit        = "systemd_unit"
	KindDocker      = "docker"
	KindProcess     = "process"
)

// DockerUnit is the unit dockerd runs as; daemon.json overrides its environment.
const DockerUnit = "docker.service"

// MaxConfigFile bounds every configuration file read: proxy settings never need more,
// and a runaway file must not stall a run.
const MaxConfigFile = 1 << 20

// File is one configuration file that may set proxy variables.
type File struct {
	Path     string // as on the system
	Resolved string // Path with symlinks followed inside the root: the file to edit
	Kind     string
	Format   string
	Unit     string // the unit a drop-in or daemon.json applies to
	Data     []byte
	ModTime  time.Time
	// Assignments in file order; values of shell files are expanded in their scope.
	Assignments []EnvAssignment
	// Docker holds the offsets of daemon.json's proxies object.
	Docker *DockerProxies
	// Inherited is the environment the file's scope had before the file: what a variable
	// the file does not set falls back to.
	Inherited map[string]string

	evaluated bool
	leak      *leakInfo
}

// SetsProxy reports whether the file leaves a proxy variable (not just no_proxy) set; a
// systemd reset (an empty Environment=) drops the assignments before it.
func (f *File) SetsProxy() bool {
	sets := false
	for _, a := range f.Assignments {
		switch {
		case a.Name == "":
			sets = false // a systemd reset: what came before no longer counts
		case slices.Contains(Vars, a.Name):
			sets = true
		}
	}
	return sets
}

// leakInfo records how a file takes part in a scope whose IMDS requests go to a proxy.
type leakInfo struct {
	clients, hosts map[string]bool
	proxy, noProxy string
	line           int
}

// Config is every file imdsmend reads for proxy settings under one root, grouped in
// the scopes that combine them (docs/proxy.md):
//
//	PAM sessions    /etc/environment
//	login shells    /etc/environment, then /etc/profile.d/*.sh
//	systemd         system.conf, then system.conf.d/*.conf (DefaultEnvironment=)
//	each unit U     systemd's, then U.d/*.conf (Environment=)
//	dockerd         docker.service's, then daemon.json's proxies
type Config struct {
	Files []*File
	// Errors are files that could not be read or parsed, as "path: reason".
	Errors []string
	// Looked lists every path LoadConfig looked at, there or not: the files it read and
	// the directories it listed (system paths). The watch follows changes to them.
	Looked []string

	environment *File
	profiles    []*File
	manager     []*File
	units       map[string][]*File
	docker      *File
}

// LoadConfig reads the proxy configuration under p.Root. Files that are missing are
// skipped; files that can't be read or parsed are listed in Errors.
func LoadConfig(p paths.Paths) *Config {
	c := &Config{units: map[string][]*File{}}
	c.environment = c.load(p, paths.EnvironmentFile, KindEnvironment, FormatEnvironment, "")
	for _, f := range c.glob(p, paths.ProfileDir, ".sh") {
		c.profiles = appendFile(c.profiles, c.load(p, f, KindProfile, FormatShell, ""))
	}
	c.manager = appendFile(c.manager, c.load(p, paths.SystemdSystemConf, KindManager, FormatSystemd, ""))
	for _, f := range c.glob(p, paths.SystemdConfDir, ".conf") {
		c.manager = appendFile(c.manager, c.load(p, f, KindManager, FormatSystemd, ""))
	}
	for _, dir := range c.glob(p, paths.SystemdUnitDir, ".service.d") {
		unit := strings.TrimSuffix(path.Base(dir), ".d")
		for _, f := range c.glob(p, dir, ".conf") {
			c.units[unit] = appendFile(c.units[unit], c.load(p, f, KindUnit, FormatSystemd, unit))
		}
	}
	c.docker = c.load(p, paths.DockerDaemonConfig, KindDocker, FormatDocker, DockerUnit)
	return c
}

func appendFile(files []*File, f *File) []*File {
	if f == nil {
		return files
	}
	return append(files, f)
}

// File returns the loaded file at the system path p, or nil.
func (c *Config) File(p string) *File {
	for _, f := range c.Files {
		if f.Path == p {
			return f
		}
	}
	return nil
}

// glob lists dir's entries ending in suffix, sorted as the shell and systemd sort them.
// Links in dir's path lead where they lead inside the root, as the files' own do.
func (c *Config) glob(p paths.Paths, dir, suffix string) []string {
	c.Looked = append(c.Looked, dir)
	resolved, err := p.Resolve(dir)
	var entries []os.DirEntry
	if err == nil {
		entries, err = os.ReadDir(p.File(resolved))
	}
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.Errors = append(c.Errors, fmt.Sprintf("%s: %v", dir, err))
		}
		return nil
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), suffix) && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, path.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out
}

// load reads and parses one file; nil when it is absent or broken (then noted in Errors).
func (c *Config) load(p paths.Paths, sysPath, kind, format, unit string) *File {
	c.Looked = append(c.Looked, sysPath)
	data, resolved, err := ReadFileInRoot(p, sysPath, MaxConfigFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		c.Errors = append(c.Errors, err.Error())
		return nil
	}
	f := &File{Path: sysPath, Resolved: resolved, Kind: kind, Format: format, Unit: unit, Data: data}
	if st, err := os.Stat(p.File(resolved)); err == nil {
		f.ModTime = st.ModTime()
	}
	errs := f.parse()
	if f.Format == FormatDocker && len(errs) > 0 {
		c.Errors = append(c.Errors, fmt.Sprintf("%s: %v", sysPath, errs[0]))
		return nil
	}
	for _, e := range errs {
		c.Errors = append(c.Errors, fmt.Sprintf("%s: %v", sysPath, e))
	}
	c.Files = append(c.Files, f)
	return f
}

// parse fills Assignments (and Docker) from Data.
func (f *File) parse() []error {
	var errs []error
	switch f.Format {
	case FormatEnvironment:
		f.Assignments = ParseEnvironment(f.Data)
	case FormatShell:
		var err error
		if f.Assignments, err = ParseShell(f.Data); err != nil {
			errs = append(errs, err)
		}
	case FormatSystemd:
		key := "Environment"
		section := "Service"
		if f.Kind == KindManager {
			key, section = "DefaultEnvironment", "Manager"
		}
		f.Assignments, errs = ParseSystemd(f.Data, section, key)
	case FormatDocker:
		dp, err := ParseDockerDaemon(f.Data)
		if err != nil {
			return []error{err}
		}
		f.Docker, f.Assignments = &dp, dp.Assignments
	}
	return errs
}

// WithData returns f as it would be with data instead: parsed, and evaluated in the same
// place of its scope. A fixer checks its edit with it before writing.
func (f *File) WithData(data []byte) (*File, error) {
	g := &File{Path: f.Path, Resolved: f.Resolved, Kind: f.Kind, Format: f.Format, Unit: f.Unit, Data: data}
	if errs := g.parse(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	base := &File{Format: FormatEnvironment}
	for _, k := range slices.Sorted(maps.Keys(f.Inherited)) {
		base.Assignments = append(base.Assignments, EnvAssignment{Name: k, Value: f.Inherited[k]})
	}
	evalScope(scope{{base}, {g}})
	return g, nil
}

// ReadFileInRoot reads the file at the system path sysPath under p.Root, following
// symlinks inside the root, refusing anything but a regular file of at most limit bytes.
// It returns the data and the resolved system path.
func ReadFileInRoot(p paths.Paths, sysPath string, limit int64) ([]byte, string, error) {
	resolved, err := p.Resolve(sysPath)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", sysPath, err)
	}
	// O_NONBLOCK: a FIFO planted in /etc/profile.d must not hang the run.
	f, err := os.OpenFile(p.File(resolved), os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, resolved, fmt.Errorf("%s: %w", sysPath, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, resolved, fmt.Errorf("%s: %w", sysPath, err)
	}
	if !st.Mode().IsRegular() {
		return nil, resolved, fmt.Errorf("%s: not a regular file (%s)", sysPath, st.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, resolved, fmt.Errorf("%s: %w", sysPath, err)
	}
	if int64(len(data)) > limit {
		return nil, resolved, fmt.Errorf("%s: larger than %d bytes; not read", sysPath, limit)
	}
	return data, resolved, nil
}

// scope is an ordered list of layers; each layer's files start from the environment the
// previous layers left, and a systemd reset in a layer goes back to that start.
type scope [][]*File

// Evaluate works out every scope's environment and marks the files that make IMDS
// requests go to a proxy.
func (c *Config) Evaluate(hosts []string) {
	var pam, login scope
	if c.environment != nil {
		pam = scope{{c.environment}}
		login = scope{{c.environment}}
	}
	login = append(login, c.profiles)
	scopes := []scope{pam, login, {c.manager}}
	for _, unit := range slices.Sorted(maps.Keys(c.units)) {
		if unit == DockerUnit && c.docker != nil {
			continue // dockerd's environment is the daemon.json scope below
		}
		scopes = append(scopes, scope{c.manager, c.units[unit]})
	}
	if c.docker != nil {
		scopes = append(scopes, scope{c.manager, c.units[DockerUnit], {c.docker}})
	}
	for _, s := range scopes {
		env, setBy := evalScope(s)
		for _, u := range IMDSProxyUses(env, hosts) {
			for _, v := range []string{u.ProxyVar, u.NoProxyVar} {
				if f := setBy[v]; f != nil {
					f.markLeak(u, v)
				}
			}
		}
	}
}

// UnitEnv is the environment systemd gives unit as configured in the files read: the
// manager's DefaultEnvironment, the unit's drop-ins and, for dockerd, daemon.json.
func (c *Config) UnitEnv(unit string) map[string]string {
	env, _ := evalScope(c.unitScope(unit))
	return env
}

// UnitSetsProxy reports whether unit's own files set a proxy: its drop-ins and, for
// dockerd, daemon.json; the manager's DefaultEnvironment does not count.
func (c *Config) UnitSetsProxy(unit string) bool {
	env, _ := evalScope(c.unitScope(unit)[1:])
	return ProxySet(env)
}

// UnitChanged is when the newest of the files that make unit's environment was modified.
func (c *Config) UnitChanged(unit string) time.Time {
	var newest time.Time
	for _, layer := range c.unitScope(unit) {
		for _, f := range layer {
			if f.ModTime.After(newest) {
				newest = f.ModTime
			}
		}
	}
	return newest
}

func (c *Config) unitScope(unit string) scope {
	s := scope{c.manager, c.units[unit]}
	if unit == DockerUnit && c.docker != nil {
		s = append(s, []*File{c.docker})
	}
	return s
}

// evalScope applies the scope's files in order, returning the environment and, per
// variable, the file that set it last.
func evalScope(s scope) (map[string]string, map[string]*File) {
	env := map[string]string{}
	setBy := map[string]*File{}
	for _, layer := range s {
		base, baseBy := maps.Clone(env), maps.Clone(setBy)
		for _, f := range layer {
			if !f.evaluated {
				f.Inherited = maps.Clone(env)
			}
			for i := range f.Assignments {
				a := &f.Assignments[i]
				if a.Name == "" {
					env, setBy = maps.Clone(base), maps.Clone(baseBy)
					continue
				}
				v := a.Value
				if f.Format == FormatDocker && v == "" {
					continue // dockerd overrides its environment only with non-empty values
				}
				if f.Format == FormatShell {
					v = expand(a.parts, env)
					if a.Append {
						v = env[a.Name] + v
					}
					if !f.evaluated {
						a.Value = v
					}
				}
				env[a.Name], setBy[a.Name] = v, f
			}
			f.evaluated = true
		}
	}
	return env, setBy
}

func newLeakInfo() *leakInfo {
	return &leakInfo{clients: map[string]bool{}, hosts: map[string]bool{}}
}

// add records one client's use of a proxy; the first use names the proxy shown.
func (l *leakInfo) add(u ProxyUse) {
	l.clients[u.Client] = true
	for _, h := range u.Hosts {
		l.hosts[h] = true
	}
	if l.proxy == "" {
		l.proxy, l.noProxy = u.Proxy, u.NoProxy
	}
}

// show marks s as leaking through the proxy (its password hidden), with the clients
// and, in the order of hosts, the addresses that leak.
func (l *leakInfo) show(s *Source, hosts []string) {
	s.Leaks = true
	s.Proxy, s.NoProxy = RedactURL(l.proxy), l.noProxy
	s.Clients = slices.Sorted(maps.Keys(l.clients))
	s.Hosts = filterHosts(hosts, func(h string) bool { return l.hosts[h] })
}

func (f *File) markLeak(u ProxyUse, variable string) {
	if f.leak == nil {
		f.leak = newLeakInfo()
	}
	l := f.leak
	l.add(u)
	// Point at the file's last assignment of the variable (the one that counts),
	// preferring the proxy over the exclusion list.
	last := 0
	for _, a := range f.Assignments {
		if a.Name == variable {
			last = a.Line
		}
	}
	if l.line == 0 || slices.Contains(Vars, variable) {
		l.line = last
	}
}
