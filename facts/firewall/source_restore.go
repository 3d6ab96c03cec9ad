package firewall

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Rules files in iptables-restore format: netfilter-persistent's rules.v4/rules.v6,
// iptables-services' /etc/sysconfig/iptables, UFW's *.rules. A file says a rule in the
// words its author typed (`-d 169.254.169.254 --dport 80`); iptables prints it in its own
// (`-d 169.254.169.254/32 -p tcp -m tcp --dport 80`). Both are reduced to one key so a live
// rule is found in the file by content.

// restoreRule is one -A (or -I) line of a rules file.
type restoreRule struct {
	table, chain string
	key          string
	line         int // 1-based
	// start and end are the byte offsets of the line, its newline included.
	start, end int
	insert     bool // -I: it goes before the rules appended so far
}

// parseRestoreFile reads the rules of an iptables-restore file in the order iptables ends
// up holding them in each chain. Lines it does not know (a chain line, COMMIT, comments)
// are skipped: the file is only searched, never judged.
func parseRestoreFile(data []byte, v6 bool, users *userDB) []restoreRule {
	var rules []restoreRule
	table := "filter"
	start := 0
	for n := 1; start < len(data); n++ {
		end := len(data)
		if i := bytes.IndexByte(data[start:], '\n'); i >= 0 {
			end = start + i + 1
		}
		line := strings.TrimSpace(string(data[start:end]))
		switch {
		case strings.HasPrefix(line, "*"):
			table = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, ":"):
			// A built-in chain's policy: the "-P CHAIN DROP" a live policy fact names.
			if f := strings.Fields(line[1:]); len(f) >= 2 && f[1] != "-" {
				rules = append(rules, restoreRule{table: table, chain: f[0], key: "-P " + f[0] + " " + f[1], line: n, start: start, end: end})
			}
		case strings.HasPrefix(line, "-A ") || strings.HasPrefix(line, "--append ") || strings.HasPrefix(line, "-I ") || strings.HasPrefix(line, "--insert "):
			words, err := SplitWords(line)
			if err != nil || len(words) < 3 {
				break
			}
			r := restoreRule{table: table, chain: words[1], line: n, start: start, end: end}
			rest := words[2:]
			if words[0] == "-I" || words[0] == "--insert" {
				r.insert = true
				if _, err := strconv.Atoi(rest[0]); err == nil {
					rest = rest[1:]
				}
			}
			r.key = RuleKey(rest, v6, users)
			rules = append(rules, r)
		}
		start = end
	}
	return orderRestore(rules)
}

// orderRestore puts each chain's -I rules before what came earlier, as the kernel does.
// (-I with a position other than 1 is rare in files; it is taken as 1.)
func orderRestore(rules []restoreRule) []restoreRule {
	out := make([]restoreRule, 0, len(rules))
	for _, r := range rules {
		if !r.insert {
			out = append(out, r)
			continue
		}
		at := len(out)
		for i, o := range out {
			if o.table == r.table && o.chain == r.chain {
				at = i
				break
			}
		}
		out = slices.Insert(out, at, r)
	}
	return out
}

// optionAliases maps long options to the names iptables-save prints.
var optionAliases = map[string]string{
	"--destination": "-d", "--source": "-s", "--protocol": "-p", "--jump": "-j", "--goto": "-g",
	"--in-interface": "-i", "--out-interface": "-o", "--match": "-m", "--fragment": "-f",
	"--destination-port": "--dport", "--source-port": "--sport",
	"--destination-ports": "--dports", "--source-ports": "--sports",
}

var protoNames = map[string]string{"6": "tcp", "17": "udp", "1": "icmp", "58": "ipv6-icmp", "icmpv6": "ipv6-icmp", "132": "sctp"}

// RuleKey reduces the words of a rule (after "-A CHAIN") to a text that is the same for
// the rule as written in a file and as iptables prints it: options by their short names,
// addresses with their prefix length, protocol match modules iptables adds by itself
// (-m tcp) left out, state lists sorted, owner names as ids, REJECT's default reason, and
// the options in any order (iptables prints -s, -d, -i, -o, -p first, whatever the file
// said).
func RuleKey(words []string, v6 bool, users *userDB) string {
	var units []string
	target := ""
	for _, u := range ruleUnits(words) {
		neg := ""
		if u[0] == "!" {
			neg, u = "! ", u[1:]
		}
		if len(u) == 0 {
			continue
		}
		opt := u[0]
		if a, ok := optionAliases[opt]; ok {
			opt = a
		}
		args := slices.Clone(u[1:])
		switch opt {
		case "-s", "-d":
			for i, a := range args {
				args[i] = canonicalPrefix(a)
			}
		case "-p":
			for i, a := range args {
				a = strings.ToLower(a)
				if n, ok := protoNames[a]; ok {
					a = n
				}
				args[i] = a
			}
		case "-m":
			if len(args) == 1 && slices.Contains([]string{"tcp", "udp", "icmp", "icmp6", "sctp"}, args[0]) {
				continue
			}
		case "--syn":
			opt, args = "--tcp-flags", []string{"FIN,SYN,RST,ACK", "SYN"}
		case "--state", "--ctstate":
			for i, a := range args {
				parts := strings.Split(a, ",")
				slices.Sort(parts)
				args[i] = strings.Join(parts, ",")
			}
		case "--uid-owner", "--gid-owner":
			for i, a := range args {
				if lo, hi, ok := users.idRange(a, opt == "--uid-owner"); ok {
					args[i] = strconv.FormatUint(uint64(lo), 10)
					if hi != lo {
						args[i] += "-" + strconv.FormatUint(uint64(hi), 10)
					}
				}
			}
		case "-j":
			if len(args) > 0 {
				target = args[0]
			}
		}
		units = append(units, neg+strings.Join(append([]string{opt}, args...), " "))
	}
	if target == "REJECT" && !slices.ContainsFunc(units, func(u string) bool { return strings.HasPrefix(u, "--reject-with ") }) {
		units = append(units, "--reject-with "+map[bool]string{false: "icmp-port-unreachable", true: "icmp6-port-unreachable"}[v6])
	}
	slices.Sort(units)
	return strings.Join(units, "\x00")
}

// ruleUnits groups words into options with their arguments, a leading "!" kept with the
// option it negates ("--dport ! 80", the old form, too).
func ruleUnits(words []string) [][]string {
	var units [][]string
	var cur []string
	neg := false
	for _, w := range words {
		switch {
		case w == "!" && (len(cur) == 0 || len(cur) > 1 || !strings.HasPrefix(cur[0], "-")):
			neg = true
		case w == "!":
			cur = append([]string{"!"}, cur...)
		case strings.HasPrefix(w, "-") && len(w) > 1 && !isNumber(w):
			if len(cur) > 0 {
				units = append(units, cur)
			}
			cur = []string{w}
			if neg {
				cur = []string{"!", w}
				neg = false
			}
		default:
			cur = append(cur, w)
		}
	}
	if len(cur) > 0 {
		units = append(units, cur)
	}
	return units
}

func isNumber(w string) bool {
	_, err := strconv.ParseFloat(w, 64)
	return err == nil
}

// canonicalPrefix writes an address or network as iptables prints it: masked, with its
// length (a dotted mask becomes a length). Anything else (a host name) stays as written.
func canonicalPrefix(s string) string {
	addr, mask, hasMask := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return s
	}
	bits := a.BitLen()
	if hasMask {
		if n, err := strconv.Atoi(mask); err == nil {
			bits = n
		} else if m, err := netip.ParseAddr(mask); err == nil {
			bits = maskBits(m)
		} else {
			return s
		}
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return s
	}
	return p.String()
}

// maskBits counts the leading ones of a dotted netmask.
func maskBits(m netip.Addr) int {
	n := 0
	for _, b := range m.AsSlice() {
		for i := 7; i >= 0; i-- {
			if b&(1<<i) == 0 {
				return n
			}
			n++
		}
	}
	return n
}

// ruleKeyOfSpec is RuleKey of a live rule's spec.
func ruleKeyOfSpec(spec string, v6 bool, users *userDB) (string, error) {
	words, err := SplitWords(spec)
	if err != nil {
		return "", fmt.Errorf("spec %q: %w", spec, err)
	}
	return RuleKey(words, v6, users), nil
}

// RestoreLineHolds reports whether line of a rules file appends (or inserts) the rule
// spec, as iptables prints it, to chain.
func RestoreLineHolds(line, chain, spec string, v6 bool) bool {
	rules := parseRestoreFile([]byte(line), v6, nil)
	key, err := ruleKeyOfSpec(spec, v6, nil)
	return err == nil && len(rules) == 1 && rules[0].chain == chain && rules[0].key == key
}
