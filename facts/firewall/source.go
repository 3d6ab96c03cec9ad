package firewall

import (
	"context"
	"fmt"
	"hash/maphash"
	"strings"
	"syscall"

	"github.com/imdsmend/imdsmend/internal/paths"
)

// Source says which front end wrote a rule and in which file and line it is kept, so the
// rule can be mended there too: a rule deleted only from the kernel comes back with the
// next `ufw reload`, `netfilter-persistent start` or boot.
type Source struct {
	FrontEnd string `cty:"front_end" json:"front_end" doc:"Who made the rule: \"ufw\", \"firewalld\", \"netfilter-persistent\" (/etc/iptables/rules.v4, rules.v6), \"iptables-services\" (/etc/sysconfig/iptables, ip6tables), \"nftables\" (nftables.conf and its includes), or \"live\" when no file known to imdsmend holds it."`
	File     string `cty:"file" json:"file" doc:"The file (as on the system) that holds the rule, found by the rule's content; empty when none does (a UFW-made rule not in UFW's files, a rule added by hand)."`
	Line     int    `cty:"line" json:"line" doc:"1-based line of the rule (or the chain's policy) in file; 0 without a file."`
}

// Front ends.
const (
	FrontEndLive                = "live"
	FrontEndUFW                 = "ufw"
	FrontEndFirewalld           = "firewalld"
	FrontEndNetfilterPersistent = "netfilter-persistent"
	FrontEndIptablesServices    = "iptables-services"
	FrontEndNftables            = "nftables"
)

// restoreFiles are the iptables-restore files of each front end, per family.
var restoreFiles = []struct {
	frontEnd string
	v4, v6   []string
}{
	{FrontEndUFW, []string{paths.UFWUserRules, paths.UFWBeforeRules, paths.UFWAfterRules}, []string{paths.UFWUser6Rules, paths.UFWBefore6Rules, paths.UFWAfter6Rules}},
	{FrontEndNetfilterPersistent, []string{paths.IptablesRulesV4}, []string{paths.IptablesRulesV6}},
	{FrontEndIptablesServices, []string{paths.SysconfigIptables}, []string{paths.SysconfigIp6tables}},
}

// attributeSources sets the Source of every rule. Files are read once each, through
// p (--root); a file that is missing or unreadable holds no rule.
func attributeSources(ctx context.Context, rules []Rule, p paths.Paths) {
	s := newSourceIndex(ctx, p)
	for i := range rules {
		rules[i].Source = s.find(&rules[i])
	}
}

// sourceIndex caches the rules files read for one attribution.
type sourceIndex struct {
	ctx     context.Context
	p       paths.Paths
	users   *userDB
	restore map[string][]restoreRule // by file
	// used counts, per file and key, the rules already matched, so the second identical
	// live rule is matched with the second identical line.
	used       map[string]int
	nft        *nftConf
	ufwEnabled *bool
	direct     []directRule
}

func newSourceIndex(ctx context.Context, p paths.Paths) *sourceIndex {
	return &sourceIndex{ctx: ctx, p: p, users: newUserDB(p), restore: map[string][]restoreRule{}, used: map[string]int{}}
}

func (s *sourceIndex) find(r *Rule) Source {
	if r.Backend == "nftables" {
		return s.findNft(r)
	}
	v6 := r.Family == "ipv6"
	key := r.Spec
	if !strings.HasPrefix(r.Spec, "-P ") {
		var err error
		if key, err = ruleKeyOfSpec(r.Spec, v6, s.users); err != nil {
			return Source{FrontEnd: FrontEndLive}
		}
	}
	ufwPolicy := s.isUFWPolicy(r)
	if IsUFWChain(r.Chain) || ufwPolicy {
		src := Source{FrontEnd: FrontEndUFW}
		if ufwPolicy {
			if line := s.ufwDefaultLine(r.Chain); line > 0 {
				src.File, src.Line = paths.UFWDefaults, line
			}
			return src
		}
		if file, line := s.findRestore(ufwFiles(v6), v6, r.Table, r.Chain, key); file != "" {
			src.File, src.Line = file, line
		}
		return src
	}
	if src, ok := s.findDirect(r, key); ok {
		return src
	}
	if isFirewalldChain(r.Chain) {
		return Source{FrontEnd: FrontEndFirewalld}
	}
	for _, fe := range restoreFiles[1:] {
		files := fe.v4
		if v6 {
			files = fe.v6
		}
		if file, line := s.findRestore(files, v6, r.Table, r.Chain, key); file != "" {
			return Source{FrontEnd: fe.frontEnd, File: file, Line: line}
		}
	}
	return Source{FrontEnd: FrontEndLive}
}

func ufwFiles(v6 bool) []string {
	if v6 {
		return restoreFiles[0].v6
	}
	return restoreFiles[0].v4
}

// findRestore finds the next unmatched line of files holding key in table and chain.
func (s *sourceIndex) findRestore(files []string, v6 bool, table, chain, key string) (string, int) {
	for _, f := range files {
		rules, ok := s.restore[f]
		if !ok {
			if data, err := s.p.ReadFile(f); err == nil {
				rules = parseRestoreFile(data, v6, s.users)
			}
			s.restore[f] = rules
		}
		seen, want := 0, s.used[f+"\x00"+table+"\x00"+chain+"\x00"+key]
		for _, fr := range rules {
			if fr.table != table || fr.chain != chain || fr.key != key {
				continue
			}
			if seen == want {
				s.used[f+"\x00"+table+"\x00"+chain+"\x00"+key]++
				return f, fr.line
			}
			seen++
		}
	}
	return "", 0
}

// IsUFWChain reports whether chain is one UFW makes (ufw-*, ufw6-* for IPv6).
func IsUFWChain(chain string) bool {
	return strings.HasPrefix(chain, "ufw-") || strings.HasPrefix(chain, "ufw6-")
}

// isUFWPolicy is a built-in chain's DROP policy on a host where UFW is enabled: UFW sets
// it from /etc/default/ufw (`ufw default deny outgoing`).
func (s *sourceIndex) isUFWPolicy(r *Rule) bool {
	if !strings.HasPrefix(r.Spec, "-P ") || r.Table != "filter" {
		return false
	}
	if s.ufwEnabled == nil {
		on := false
		if data, err := s.p.ReadFile(paths.UFWConf); err == nil {
			on = shellValue(data, "ENABLED") == "yes"
		}
		s.ufwEnabled = &on
	}
	return *s.ufwEnabled
}

// shellValue is the value of NAME=value in a shell-style settings file, quotes removed,
// and the 1-based line that sets it.
func shellValueLine(data []byte, name string) (string, int) {
	val, at := "", 0
	for n, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+"="); ok {
			val, at = strings.Trim(strings.TrimSpace(v), `"'`), n+1
		}
	}
	return val, at
}

func shellValue(data []byte, name string) string {
	v, _ := shellValueLine(data, name)
	return v
}

// ufwDefaultLine is the line of /etc/default/ufw that sets chain's policy.
func (s *sourceIndex) ufwDefaultLine(chain string) int {
	name := map[string]string{"OUTPUT": "DEFAULT_OUTPUT_POLICY", "FORWARD": "DEFAULT_FORWARD_POLICY", "INPUT": "DEFAULT_INPUT_POLICY"}[chain]
	data, err := s.p.ReadFile(paths.UFWDefaults)
	if name == "" || err != nil {
		return 0
	}
	_, line := shellValueLine(data, name)
	return line
}

// sourceFiles are the files attributeSources reads (nftables.conf's includes aside):
// a change to any of them changes the sources, so the watch's generation counts them.
func sourceFiles() []string {
	files := []string{paths.UFWConf, paths.UFWDefaults, paths.FirewalldDirect}
	for _, fe := range restoreFiles {
		files = append(files, fe.v4...)
		files = append(files, fe.v6...)
	}
	return append(files, paths.NftablesConfs...)
}

// sourcesStamp tells versions of the source files apart without reading them.
func sourcesStamp(p paths.Paths) uint64 {
	var h maphash.Hash
	h.SetSeed(stampSeed)
	for _, f := range sourceFiles() {
		var st syscall.Stat_t
		if syscall.Stat(p.File(f), &st) == nil {
			fmt.Fprintln(&h, f, st.Ino, st.Size, st.Mtim.Nano(), st.Ctim.Nano())
		}
	}
	return h.Sum64()
}

var stampSeed = maphash.MakeSeed()
