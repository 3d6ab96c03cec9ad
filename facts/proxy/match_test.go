package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// noProxyCase is a no_proxy value with what each client decides for a host. The table
// lives in testdata so that both columns can be checked against the real clients: Go's
// here against net/http (TestGoBypassesMatchesNetHTTP), curl's in a namespace by the e2e
// test TestProxyRulesMatchCurl.
type noProxyCase struct {
	NoProxy    string `json:"no_proxy"`
	Host       string `json:"host"`
	GoBypass   bool   `json:"go"`
	CurlBypass bool   `json:"curl"`
	Why        string `json:"why,omitempty"`
}

func loadNoProxyCases(t testing.TB) []noProxyCase {
	t.Helper()
	var cases []noProxyCase
	if err := json.Unmarshal(readTestdata(t, "noproxy_cases.json"), &cases); err != nil {
		t.Fatal(err)
	}
	return cases
}

func TestNoProxyRules(t *testing.T) {
	for _, tc := range loadNoProxyCases(t) {
		if got := GoBypasses(tc.NoProxy, tc.Host); got != tc.GoBypass {
			t.Errorf("GoBypasses(%q, %s) = %v, want %v", tc.NoProxy, tc.Host, got, tc.GoBypass)
		}
		if got := CurlBypasses(tc.NoProxy, tc.Host); got != tc.CurlBypass {
			t.Errorf("CurlBypasses(%q, %s) = %v, want %v", tc.NoProxy, tc.Host, got, tc.CurlBypass)
		}
		if got, want := NoProxyBypasses(tc.NoProxy, []string{tc.Host}), tc.GoBypass && tc.CurlBypass; got != want {
			t.Errorf("NoProxyBypasses(%q, %s) = %v, want %v", tc.NoProxy, tc.Host, got, want)
		}
	}
}

// helperEnv marks the re-executed test binary that reports net/http's proxy decision.
const helperEnv = "IMDSMEND_TEST_NETHTTP_URL"

// TestNetHTTPHelper is not a test: run with helperEnv set, it prints what
// http.ProxyFromEnvironment chooses for that URL under the process environment.
func TestNetHTTPHelper(t *testing.T) {
	u := os.Getenv(helperEnv)
	if u == "" {
		t.Skip("helper process only")
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := http.ProxyFromEnvironment(req)
	switch {
	case err != nil:
		fmt.Println("error")
	case proxy == nil:
		fmt.Println("direct")
	default:
		fmt.Println("proxy")
	}
}

// netHTTPProxies asks net/http, in a fresh process (it reads the environment once), whether
// a GET of url goes to a proxy under env.
func netHTTPProxies(t *testing.T, env map[string]string, url string) bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestNetHTTPHelper$", "-test.count=1")
	cmd.Env = []string{helperEnv + "=" + url, "PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	switch {
	case strings.HasPrefix(string(out), "proxy"):
		return true
	case strings.HasPrefix(string(out), "direct"):
		return false
	}
	t.Fatalf("helper printed %q", out)
	return false
}

func imdsURL(host string) string {
	if strings.Contains(host, ":") {
		return "http://[" + host + "]/latest/api/token"
	}
	return "http://" + host + "/latest/api/token"
}

func TestGoBypassesMatchesNetHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process per case")
	}
	for _, tc := range loadNoProxyCases(t) {
		env := map[string]string{EnvHTTPProxyUC: "http://127.0.0.1:3128", EnvNoProxyUC: tc.NoProxy}
		if got := netHTTPProxies(t, env, imdsURL(tc.Host)); got == tc.GoBypass {
			t.Errorf("net/http with NO_PROXY=%q proxies %s: %v; the table says bypass=%v", tc.NoProxy, tc.Host, got, tc.GoBypass)
		}
	}
}

func TestIMDSProxyUses(t *testing.T) {
	const p = "http://proxy:3128"
	both := []string{IMDSHost, IMDSv6Host}
	tests := []struct {
		name  string
		env   map[string]string
		hosts []string
		want  []ProxyUse
	}{
		{"nothing set", map[string]string{}, both, nil},
		{"https_proxy only: IMDS is http", map[string]string{EnvHTTPSProxy: p, EnvHTTPSProxyUC: p}, both, nil},
		{"HTTP_PROXY only: curl ignores the upper case",
			map[string]string{EnvHTTPProxyUC: p}, []string{IMDSHost},
			[]ProxyUse{{ClientGo, EnvHTTPProxyUC, p, "", "", []string{IMDSHost}}}},
		{"HTTP_PROXY with no_proxy: Go falls back to the lower case",
			map[string]string{EnvHTTPProxyUC: p, EnvNoProxy: IMDSHost}, []string{IMDSHost}, nil},
		{"upper NO_PROXY wins for Go, lower no_proxy for curl",
			map[string]string{EnvHTTPProxy: p, EnvNoProxy: "localhost", EnvNoProxyUC: IMDSHost}, []string{IMDSHost},
			[]ProxyUse{{ClientCurl, EnvHTTPProxy, p, EnvNoProxy, "localhost", []string{IMDSHost}}}},
		{"lower no_proxy wins for curl, upper NO_PROXY for Go",
			map[string]string{EnvHTTPProxy: p, EnvNoProxy: IMDSHost, EnvNoProxyUC: "localhost"}, []string{IMDSHost},
			[]ProxyUse{{ClientGo, EnvHTTPProxy, p, EnvNoProxyUC, "localhost", []string{IMDSHost}}}},
		{"empty variables count as unset",
			map[string]string{EnvHTTPProxy: "", EnvHTTPProxyUC: p, EnvNoProxyUC: "", EnvNoProxy: IMDSHost}, []string{IMDSHost}, nil},
		{"ALL_PROXY: curl only",
			map[string]string{EnvAllProxyUC: p}, []string{IMDSHost},
			[]ProxyUse{{ClientCurl, EnvAllProxyUC, p, "", "", []string{IMDSHost}}}},
		{"all_proxy before ALL_PROXY",
			map[string]string{EnvAllProxy: "socks5://a:1080", EnvAllProxyUC: p}, []string{IMDSHost},
			[]ProxyUse{{ClientCurl, EnvAllProxy, "socks5://a:1080", "", "", []string{IMDSHost}}}},
		{"IPv4 excluded, IPv6 not",
			map[string]string{EnvHTTPProxy: p, EnvNoProxy: IMDSHost}, both,
			[]ProxyUse{
				{ClientGo, EnvHTTPProxy, p, EnvNoProxy, IMDSHost, []string{IMDSv6Host}},
				{ClientCurl, EnvHTTPProxy, p, EnvNoProxy, IMDSHost, []string{IMDSv6Host}},
			}},
		{"both excluded", map[string]string{EnvHTTPProxy: p, EnvNoProxy: IMDSHost + "," + IMDSv6Host}, both, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := IMDSProxyUses(tt.env, tt.hosts)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("IMDSProxyUses (-want +got):\n%s", diff)
			}
			if testing.Short() {
				return
			}
			// The Go verdict must be net/http's.
			for _, h := range tt.hosts {
				goLeaks := false
				for _, u := range got {
					if u.Client == ClientGo && contains(u.Hosts, h) {
						goLeaks = true
					}
				}
				if real := netHTTPProxies(t, tt.env, imdsURL(h)); real != goLeaks {
					t.Errorf("net/http proxies %s: %v; IMDSProxyUses says Go leaks: %v", h, real, goLeaks)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func TestRedactProxyURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://user:secret@proxy:3128", "http://REDACTED@proxy:3128"},
		{"http://user:secret@proxy:3128/", "http://REDACTED@proxy:3128/"},
		{"user:secret@proxy:3128", "REDACTED@proxy:3128"},
		{"http://tok@en:p@ss@proxy:3128", "http://REDACTED@proxy:3128"},
		{"http://proxy:3128", "http://proxy:3128"},
		{"http://user:se/cr?et#@proxy:3128", "http://REDACTED@proxy:3128"},
		{"http://proxy:3128/path@x", "http://REDACTED@x"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzNoProxy(f *testing.F) {
	for _, tc := range loadNoProxyCases(f) {
		f.Add(tc.NoProxy)
	}
	f.Fuzz(func(t *testing.T, noProxy string) {
		// Never panics; and appending the address itself always makes both clients bypass.
		for _, h := range Hosts(true) {
			GoBypasses(noProxy, h)
			CurlBypasses(noProxy, h)
		}
		fixed := noProxy + "," + IMDSHost
		if strings.ContainsAny(noProxy, " \t") || noProxy == "*" {
			return // a blank ends curl's list: the appended entry is not read
		}
		if !NoProxyBypasses(fixed, []string{IMDSHost}) {
			t.Errorf("%q does not bypass %s", fixed, IMDSHost)
		}
	})
}
