package proxy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/imdsmend/imdsmend/internal/paths"
)

// Proxy lists where proxy settings are found and whether each would carry IMDS requests
// to a proxy.
type Proxy struct {
	Sources []Source `cty:"sources" json:"sources" doc:"Every file or group of processes that sets a proxy variable or a no_proxy list."`
	// Processes counts the process environments read.
	Processes  int      `cty:"processes" json:"processes" doc:"Process environments read from /proc."`
	Unreadable int      `cty:"processes_unreadable" json:"processes_unreadable" doc:"Processes whose environment could not be read (not root?)."`
	Errors     []string `cty:"errors" json:"errors" doc:"Files that could not be read or parsed, as \"path: reason\"; a proxy they set is not seen."`
}

// Source is one file, or a group of processes with the same unit and proxy
// environment, that sets proxy variables.
type Source struct {
	Name      string   `cty:"name" json:"name" doc:"How messages name it: the file (and its unit), or the command, PIDs and unit of the processes."`
	Kind      string   `cty:"kind" json:"kind" doc:"environment_file, profile, systemd_manager, systemd_unit, docker or process."`
	Path      string   `cty:"path" json:"path" doc:"The file (as on the system, without --root), or /proc/PID/environ of the first process."`
	Line      int      `cty:"line" json:"line" doc:"Line of the assignment that matters: the proxy, else the no_proxy list; 0 for processes."`
	Unit      string   `cty:"unit" json:"unit" doc:"systemd unit the setting applies to or the processes run in, if any."`
	PIDs      []int    `cty:"pids" json:"pids" doc:"The processes with this environment (kind process)."`
	Command   string   `cty:"command" json:"command" doc:"Command name of the first process (kind process)."`
	Variables []string `cty:"variables" json:"variables" doc:"Proxy and no_proxy variables it sets, as spelled."`
	Proxy     string   `cty:"proxy" json:"proxy" doc:"The proxy IMDS requests would go to, else the first one it sets; user and password removed."`
	NoProxy   string   `cty:"no_proxy" json:"no_proxy" doc:"The no_proxy list in effect where it applies (the one the leaking client reads)."`
	Leaks     bool     `cty:"leaks" json:"leaks" doc:"curl or a Go program with these settings would send IMDS requests to the proxy."`
	Clients   []string `cty:"clients" json:"clients" doc:"Which clients would: \"curl\", \"go\"; empty when it does not leak."`
	Hosts     []string `cty:"hosts" json:"hosts" doc:"IMDS addresses that would go to the proxy: 169.254.169.254, and fd00:ec2::254 when settings.ipv6 is on."`
	// RestartFixes marks processes a restart of their unit would cure: see restartFixes.
	RestartFixes bool `cty:"restart_fixes" json:"restart_fixes" doc:"Processes only: the unit's files (drop-ins, DefaultEnvironment, daemon.json) set the proxy and still leak or changed after the process started, so restarting the unit ends the leak once they are fixed."`
}

// Gather reads proxy settings from the configuration files and process environments under
// where.Root and decides for each whether requests to hosts go to a proxy.
func Gather(ctx context.Context, where paths.Paths, hosts []string) (*Proxy, error) {
	conf := LoadConfig(where)
	conf.Evaluate(hosts)
	p := &Proxy{Sources: []Source{}, Errors: conf.Errors}
	if p.Errors == nil {
		p.Errors = []string{}
	}
	for _, f := range conf.Files {
		if s, ok := fileSource(f, hosts); ok {
			p.Sources = append(p.Sources, s)
		}
	}
	procs, err := scanProcesses(ctx, where, conf, hosts)
	if err != nil {
		return nil, err
	}
	p.Processes, p.Unreadable = procs.read, procs.unreadable
	for _, f := range procs.stuck {
		p.Errors = append(p.Errors, f+": a read from an earlier pass is still blocked (the process in D state?); not read again until it returns")
	}
	p.Sources = append(p.Sources, procs.sources...)
	return p, nil
}

// fileSource describes f if it sets any proxy variable.
func fileSource(f *File, hosts []string) (Source, bool) {
	s := Source{Kind: f.Kind, Path: f.Path, Unit: f.Unit, PIDs: []int{}, Clients: []string{}, Hosts: []string{}}
	own := map[string]string{}
	for _, a := range f.Assignments {
		if !isProxyVar(a.Name) {
			continue
		}
		if !slices.Contains(s.Variables, a.Name) {
			s.Variables = append(s.Variables, a.Name)
		}
		own[a.Name] = a.Value
		if s.Line == 0 {
			s.Line = a.Line
		}
	}
	if len(s.Variables) == 0 {
		return s, false
	}
	s.Name = f.Path
	if f.Unit != "" {
		s.Name += " (" + f.Unit + ")"
	}
	if l := f.leak; l != nil {
		s.Line = l.line
		l.show(&s, hosts)
	} else {
		s.showSettings(own)
	}
	return s, true
}

// showSettings names, for a source that does not leak, the first proxy it sets (for any
// scheme) and its no_proxy list.
func (s *Source) showSettings(env map[string]string) {
	_, proxy := firstSet(env, EnvHTTPProxy, EnvHTTPProxyUC, EnvAllProxy, EnvAllProxyUC, EnvHTTPSProxy, EnvHTTPSProxyUC)
	_, s.NoProxy = firstSet(env, EnvNoProxy, EnvNoProxyUC)
	s.Proxy = RedactURL(proxy)
}

// processName is how a message names a group of processes: "dockerd[812,813] in docker.service".
func processName(command string, pids []int, unit string) string {
	var b strings.Builder
	b.WriteString(command)
	b.WriteByte('[')
	for i, pid := range pids {
		if i == 5 {
			fmt.Fprintf(&b, ",… %d more", len(pids)-5)
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, pid)
	}
	b.WriteByte(']')
	if unit != "" {
		b.WriteString(" in " + unit)
	}
	return b.String()
}
