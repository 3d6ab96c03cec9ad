package proxy

import (
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// How HTTP clients decide whether a request to IMDS goes through a proxy. Two families
// are modelled, because between them they cover what runs on an instance: Go's
// net/http.ProxyFromEnvironment (golang.org/x/net/http/httpproxy; the AWS SDK for Go, the
// SSM agent, dockerd, containerd, kubelet) and curl's lib/url.c + lib/noproxy.c (curl,
// libcurl users, shell scripts). docs/proxy.md lists where they differ.

// Clients whose proxy rules imdsmend models.
const (
	ClientGo   = "go"
	ClientCurl = "curl"
)

// IMDS hosts a no_proxy list must exclude.
const (
	IMDSHost   = "169.254.169.254"
	IMDSv6Host = "fd00:ec2::254"
)

// Proxy variables, as spelled in environments.
const (
	EnvHTTPProxy    = "http_proxy"
	EnvHTTPProxyUC  = "HTTP_PROXY"
	EnvHTTPSProxy   = "https_proxy"
	EnvHTTPSProxyUC = "HTTPS_PROXY"
	EnvAllProxy     = "all_proxy"
	EnvAllProxyUC   = "ALL_PROXY"
	EnvNoProxy      = "no_proxy"
	EnvNoProxyUC    = "NO_PROXY"
)

// Vars are the variables that name a proxy.
var Vars = []string{EnvHTTPProxy, EnvHTTPProxyUC, EnvHTTPSProxy, EnvHTTPSProxyUC, EnvAllProxy, EnvAllProxyUC}

// NoProxyVars are the two spellings of the exclusion list.
var NoProxyVars = []string{EnvNoProxy, EnvNoProxyUC}

// Hosts returns the IMDS hosts that must bypass proxies: the IPv4 address, and the
// IPv6 one when the policy turns IPv6 on.
func Hosts(ipv6 bool) []string {
	if ipv6 {
		return []string{IMDSHost, IMDSv6Host}
	}
	return []string{IMDSHost}
}

// isProxyVar reports whether name is one of the proxy or no_proxy variables.
func isProxyVar(name string) bool {
	switch name {
	case EnvHTTPProxy, EnvHTTPProxyUC, EnvHTTPSProxy, EnvHTTPSProxyUC, EnvAllProxy, EnvAllProxyUC, EnvNoProxy, EnvNoProxyUC:
		return true
	}
	return false
}

// ProxyUse is how one client would send IMDS requests through a proxy.
type ProxyUse struct {
	Client     string
	ProxyVar   string // the variable the proxy came from
	Proxy      string // its value (may hold a password: redact before showing)
	NoProxyVar string // the exclusion variable the client read, "" if none was set
	NoProxy    string
	Hosts      []string // IMDS hosts that would go to the proxy
}

// IMDSProxyUses returns, per client, the proxy an HTTP request to each of hosts would go
// through under env; an empty result means every host bypasses every proxy. IMDS is
// plain HTTP, so https_proxy never applies.
func IMDSProxyUses(env map[string]string, hosts []string) []ProxyUse {
	var uses []ProxyUse
	// Go: HTTP_PROXY before http_proxy, NO_PROXY before no_proxy (httpproxy.FromEnvironment);
	// a value that is not a URL is ignored. ALL_PROXY means nothing to Go.
	if pv, p := firstSet(env, EnvHTTPProxyUC, EnvHTTPProxy); p != "" && goProxyParses(p) {
		nv, np := firstSet(env, EnvNoProxyUC, EnvNoProxy)
		if leaked := filterHosts(hosts, func(h string) bool { return !GoBypasses(np, h) }); len(leaked) > 0 {
			uses = append(uses, ProxyUse{ClientGo, pv, p, nv, np, leaked})
		}
	}
	// curl: http_proxy only in lower case (HTTP_PROXY is ignored for http:// URLs as a CGI
	// safeguard), then all_proxy, ALL_PROXY; no_proxy before NO_PROXY. Any value counts: a
	// value curl can't parse fails the request instead of bypassing the proxy.
	if pv, p := firstSet(env, EnvHTTPProxy, EnvAllProxy, EnvAllProxyUC); p != "" {
		nv, np := firstSet(env, EnvNoProxy, EnvNoProxyUC)
		if leaked := filterHosts(hosts, func(h string) bool { return !CurlBypasses(np, h) }); len(leaked) > 0 {
			uses = append(uses, ProxyUse{ClientCurl, pv, p, nv, np, leaked})
		}
	}
	return uses
}

// ProxySet reports whether env names a proxy that either client would use for http://.
func ProxySet(env map[string]string) bool {
	_, g := firstSet(env, EnvHTTPProxyUC, EnvHTTPProxy)
	_, c := firstSet(env, EnvHTTPProxy, EnvAllProxy, EnvAllProxyUC)
	return (g != "" && goProxyParses(g)) || c != ""
}

// NoProxyBypasses reports whether the list excludes every host for both clients.
func NoProxyBypasses(noProxy string, hosts []string) bool {
	for _, h := range hosts {
		if !GoBypasses(noProxy, h) || !CurlBypasses(noProxy, h) {
			return false
		}
	}
	return true
}

// firstSet returns the first variable with a non-empty value: both clients treat an empty
// variable as unset.
func firstSet(env map[string]string, names ...string) (name, value string) {
	for _, n := range names {
		if v := env[n]; v != "" {
			return n, v
		}
	}
	return "", ""
}

func filterHosts(hosts []string, keep func(string) bool) []string {
	var out []string
	for _, h := range hosts {
		if keep(h) {
			out = append(out, h)
		}
	}
	return out
}

// goProxyParses mirrors httpproxy's parseProxy: a bare host:port gets http:// prepended.
func goProxyParses(p string) bool {
	u, err := url.Parse(p)
	if err != nil || u.Scheme == "" || u.Host == "" {
		if _, err := url.Parse("http://" + p); err == nil {
			return true
		}
	}
	return err == nil
}

// GoBypasses reports whether Go's NO_PROXY rules exclude http://host (port 80). host is an
// IP literal without brackets. Entries are split on commas and trimmed; "*" anywhere
// excludes everything; CIDRs and IPs (optionally with a port) match the address; domain
// entries never match an IP; ports must equal 80.
func GoBypasses(noProxy, host string) bool {
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	for _, p := range strings.Split(noProxy, ",") {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "" {
			continue
		}
		if p == "*" {
			return true
		}
		if _, pnet, err := net.ParseCIDR(p); err == nil {
			if pnet.Contains(ip) {
				return true
			}
			continue
		}
		// SplitHostPort strips the brackets of "[::1]:80"; a bracketed address without a
		// port stays bracketed and so never parses as an IP, as in httpproxy.
		phost, pport, err := net.SplitHostPort(p)
		if err != nil {
			phost, pport = p, ""
		}
		if pip := net.ParseIP(phost); pip != nil && pip.Equal(ip) && (pport == "" || pport == "80") {
			return true
		}
	}
	return false
}

// CurlBypasses reports whether curl's no_proxy rules exclude host (an IP literal). The
// whole value "*" excludes everything (a "*" entry in a list does not); entries are
// separated by commas, and a blank not followed by a comma ends the list (current curl;
// curl 7 also split at blanks). An IPv4 entry is an address or CIDR compared numerically;
// a port, a leading dot or a host name never matches. curl hands an IPv6 URL's host to the
// check without brackets, so it is compared as a name: only the same text matches (case
// aside), not another spelling of the address and not a CIDR. Where curl versions differ,
// this takes the one that proxies.
func CurlBypasses(noProxy, host string) bool {
	if noProxy == "" {
		return false
	}
	if noProxy == "*" {
		return true
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	match := func(token string) bool { return curlCIDRMatch(addr, token) }
	if addr.Is6() {
		match = func(token string) bool {
			return strings.EqualFold(strings.TrimPrefix(strings.TrimSuffix(token, "."), "."), host)
		}
	}
	p := noProxy
	for p != "" {
		p = strings.TrimLeft(p, " \t")
		end := strings.IndexAny(p, " \t,")
		if end < 0 {
			end = len(p)
		}
		if token := p[:end]; token != "" && match(token) {
			return true
		}
		p = strings.TrimLeft(p[end:], " \t")
		if !strings.HasPrefix(p, ",") {
			break
		}
		p = strings.TrimLeft(p, ",")
	}
	return false
}

// curlCIDRMatch is Curl_cidr4_match: "/bits" is read with atoi, and zero bits means the
// whole address.
func curlCIDRMatch(addr netip.Addr, token string) bool {
	check, bitsText, hasBits := strings.Cut(token, "/")
	bits := 0
	if hasBits {
		bits = atoi(bitsText)
	}
	network, err := netip.ParseAddr(check)
	if err != nil || network.Zone() != "" || network.Is4() != addr.Is4() {
		return false
	}
	size := addr.BitLen()
	if bits < 0 || bits > size {
		return false
	}
	if bits == 0 {
		bits = size
	}
	a, _ := addr.Prefix(bits)
	n, _ := network.Prefix(bits)
	return a == n
}

// atoi is C's atoi: optional blanks and sign, then digits up to the first other byte.
func atoi(s string) int {
	s = strings.TrimLeft(s, " \t")
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	n := 0
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int(s[i]-'0')
		if n > 1<<20 {
			break
		}
	}
	if neg {
		return -n
	}
	return n
}

// RedactURL hides the user and password of a proxy URL ("http://u:p@proxy:3128" →
// "http://REDACTED@proxy:3128"), with or without a scheme. Everything up to the last '@'
// goes: a password written without percent-encoding may hold '/', '?' or '#', and a proxy
// URL has no path where an '@' would mean something else.
func RedactURL(v string) string {
	rest, prefix := v, ""
	if i := strings.Index(v, "://"); i >= 0 {
		prefix, rest = v[:i+3], v[i+3:]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return v
	}
	return prefix + "REDACTED" + rest[at:]
}
