package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/tests/harness"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
	"github.com/imdsmend/imdsmend/tests/tree"
)

// The proxy tests run imdsmend with --root on trees built from real file layouts (the
// fixtures of the proxy facts' unit tests), inside a namespace where ec2-metadata-mock
// serves IMDS, so the verdict after apply is a real one.

// proxyFixture is a file captured for the proxy facts' tests.
func proxyFixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "facts", "proxy", "testdata", "proxy", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// The password in the fixtures; it must never leave the files it is in.
const proxyPassword = "secret"

// proxyTree is a --root tree with the default policy at /etc/imdsmend/policy.hcl and the
// state directory at /state.
type proxyTree struct {
	t    *testing.T
	ns   *harness.Namespace
	root string
	// outputs collects every stdout and stderr, to look for the password.
	outputs []string
}

// newProxyTree writes files under a new root (tree.Write).
func newProxyTree(t *testing.T, ns *harness.Namespace, files map[string]string) *proxyTree {
	t.Helper()
	tr := &proxyTree{t: t, ns: ns, root: t.TempDir()}
	files["etc/imdsmend/policy.hcl"] = string(imdsmend.DefaultPolicy)
	tree.Write(t, tr.root, files)
	return tr
}

func (tr *proxyTree) path(name string) string { return filepath.Join(tr.root, name) }

// exec runs imdsmend COMMAND on the tree inside the namespace.
func (tr *proxyTree) exec(ctx context.Context, wrapper []string, command string, args ...string) harness.Result {
	tr.t.Helper()
	argv := append(slices.Clone(wrapper), bins.Imdsmend, command, "--root", tr.root, "--policy", "/etc/imdsmend/policy.hcl",
		"--state-dir", "/state", "--format", "json")
	argv = append(argv, args...)
	res, err := tr.ns.Exec(ctx, nil, argv[0], argv[1:]...)
	if err != nil {
		tr.t.Fatal(err)
	}
	tr.outputs = append(tr.outputs, res.Stdout, res.Stderr)
	return res
}

// report runs COMMAND and decodes its JSON report.
func (tr *proxyTree) report(ctx context.Context, command string, args ...string) (*report.Report, harness.Result) {
	tr.t.Helper()
	res := tr.exec(ctx, nil, command, args...)
	return decodeReport(tr.t, command, res), res
}

// noPassword fails if the proxy password appeared in any output or in the ledger.
func (tr *proxyTree) noPassword() {
	tr.t.Helper()
	ledger, err := os.ReadFile(tr.path("state/ledger.jsonl"))
	if err != nil && !os.IsNotExist(err) {
		tr.t.Fatal(err)
	}
	for _, out := range append(tr.outputs, string(ledger)) {
		if strings.Contains(out, proxyPassword) {
			tr.t.Errorf("the proxy password appears in:\n%s", out)
		}
	}
}

// fileState is what must survive an edit or come back after undo.
type fileState struct {
	Content  string
	Mode     fs.FileMode
	UID, GID uint32
	Link     string
}

// snapshot records every file of the tree but imdsmend's own (policy, state, lock).
func (tr *proxyTree) snapshot() map[string]fileState {
	tr.t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(tr.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(tr.root, p)
		if rel == "etc/imdsmend" || rel == "state" || rel == "run" {
			return filepath.SkipDir
		}
		if d.IsDir() {
			return nil
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		sys := st.Sys().(*syscall.Stat_t)
		fsn := fileState{Mode: st.Mode(), UID: sys.Uid, GID: sys.Gid}
		if st.Mode()&fs.ModeSymlink != 0 {
			fsn.Link, err = os.Readlink(p)
		} else {
			var data []byte
			data, err = os.ReadFile(p)
			fsn.Content = string(data)
		}
		out[rel] = fsn
		return err
	})
	if err != nil {
		tr.t.Fatal(err)
	}
	return out
}

// proxyFinding is the report's open proxy_leak finding, or nil.
func proxyFinding(rep *report.Report) *report.Finding {
	for i, f := range rep.Findings {
		if f.Rule == "proxy_leak" {
			return &rep.Findings[i]
		}
	}
	return nil
}

// TestProxyLeaks drives each leak through found → planned → applied (healthy) → second
// apply unchanged → undo --last, checking the files byte for byte, their mode and owner,
// and that the proxy password shows nowhere.
func TestProxyLeaks(t *testing.T) {
	envUbuntu := proxyFixture(t, "environment.ubuntu")
	script := proxyFixture(t, "proxy.sh")
	dropIn := proxyFixture(t, "http-proxy.conf")
	daemon := proxyFixture(t, "daemon.json")
	tests := []struct {
		name  string
		files map[string]string
		// leaking is what the finding must name; edited maps a file to its content after
		// apply; every other file must stay as it was.
		leaking []string
		edited  map[string]string
	}{
		{"Ubuntu /etc/environment",
			map[string]string{"etc/environment": envUbuntu},
			[]string{"/etc/environment:2"},
			map[string]string{"etc/environment": strings.NewReplacer(`no_proxy="localhost,127.0.0.1,::1"`, `no_proxy="localhost,127.0.0.1,::1,169.254.169.254"`,
				`NO_PROXY="localhost,127.0.0.1,::1"`, `NO_PROXY="localhost,127.0.0.1,::1,169.254.169.254"`).Replace(envUbuntu)}},
		{"profile.d script",
			map[string]string{"etc/profile.d/proxy.sh": script, "etc/profile.d/bash_completion.sh": "# check for interactive bash and that we haven't already been sourced.\nif [ \"x${BASH_VERSION-}\" != x -a \"x${PS1-}\" != x -a \"x${BASH_COMPLETION_VERSINFO-}\" = x ]; then\n    . /usr/share/bash-completion/bash_completion\nfi\n"},
			[]string{"/etc/profile.d/proxy.sh:"},
			map[string]string{"etc/profile.d/proxy.sh": strings.NewReplacer(`no_proxy="127.0.0.1,localhost"`, `no_proxy="127.0.0.1,localhost,169.254.169.254"`,
				`NO_PROXY="127.0.0.1,localhost"`, `NO_PROXY="127.0.0.1,localhost,169.254.169.254"`).Replace(script)}},
		{"docker drop-in with a password",
			map[string]string{"etc/systemd/system/docker.service.d/http-proxy.conf": dropIn, "etc/systemd/system.conf": proxyFixture(t, "system.conf")},
			[]string{"/etc/systemd/system/docker.service.d/http-proxy.conf:2 (go via http://REDACTED@proxy:3128)"},
			map[string]string{"etc/systemd/system/docker.service.d/http-proxy.conf": strings.Replace(dropIn,
				"NO_PROXY=localhost,127.0.0.1,docker-registry.example.com,.corp\"\n",
				"NO_PROXY=localhost,127.0.0.1,docker-registry.example.com,.corp,169.254.169.254\"\nEnvironment=\"no_proxy=localhost,127.0.0.1,docker-registry.example.com,.corp,169.254.169.254\"\n", 1)}},
		{"daemon.json",
			map[string]string{"etc/docker/daemon.json": daemon},
			[]string{"/etc/docker/daemon.json:7"},
			map[string]string{"etc/docker/daemon.json": strings.Replace(daemon, `127.0.0.0/8"`, `127.0.0.0/8,169.254.169.254"`, 1)}},
		{"symlinked /etc/environment, CRLF, no final newline",
			map[string]string{"etc/environment": "->/etc/default/environment",
				"etc/default/environment": "PATH=\"/usr/local/bin:/usr/bin:/bin\"\r\nhttp_proxy=http://user:secret@proxy:3128\r\nno_proxy=localhost"},
			[]string{"/etc/environment:2"},
			map[string]string{"etc/default/environment": "PATH=\"/usr/local/bin:/usr/bin:/bin\"\r\nhttp_proxy=http://user:secret@proxy:3128\r\nno_proxy=localhost,169.254.169.254\r\nNO_PROXY=localhost,169.254.169.254"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			ns := newNamespace(t)
			serveAEMM(ctx, t, ns)
			tr := newProxyTree(t, ns, tt.files)
			// Owners and modes that must survive the edit.
			for name := range tt.edited {
				if err := os.Chown(tr.path(name), 1000, 1000); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(tr.path(name), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			before := tr.snapshot()

			// Found.
			rep, res := tr.report(ctx, "check")
			f := proxyFinding(rep)
			if res.ExitCode != report.ExitFindings || f == nil || f.Severity != "critical" {
				t.Fatalf("check: exit %d, findings %v; want exit 2 with a critical proxy_leak\n%s", res.ExitCode, findingRules(rep), res.Stdout)
			}
			for _, want := range tt.leaking {
				if !strings.Contains(f.Summary, want) {
					t.Errorf("the finding does not name %q: %s", want, f.Summary)
				}
			}

			// Planned, and nothing changed.
			rep, res = tr.report(ctx, "plan")
			planned := actionsOf(rep, "no_proxy")
			if res.ExitCode != report.ExitFindings || len(planned) != 1 || planned[0].Status != "planned" {
				t.Fatalf("plan: exit %d, no_proxy actions %+v; want one planned\n%s", res.ExitCode, planned, res.Stderr)
			}
			if diff := cmp.Diff(before, tr.snapshot()); diff != "" {
				t.Errorf("plan changed files (-before +after):\n%s", diff)
			}

			// Applied exactly as planned; healthy.
			rep, res = tr.report(ctx, "apply")
			applied := actionsOf(rep, "no_proxy")
			if res.ExitCode != report.ExitHealthy || !rep.Healthy {
				t.Fatalf("apply: exit %d, healthy %v, findings %+v, actions %+v\n%s", res.ExitCode, rep.Healthy, rep.Findings, rep.Actions, res.Stderr)
			}
			if len(applied) != 1 || applied[0].Status != "applied" || applied[0].ID != planned[0].ID || applied[0].Detail != planned[0].Detail {
				t.Errorf("apply actions %+v, want the planned one %+v applied", applied, planned[0])
			}
			want := map[string]fileState{}
			for name, st := range before {
				if content, ok := tt.edited[name]; ok {
					st.Content = content
				}
				want[name] = st
			}
			if diff := cmp.Diff(want, tr.snapshot()); diff != "" {
				t.Errorf("files after apply (-want +got):\n%s", diff)
			}

			// A second apply finds nothing to do.
			rep, res = tr.report(ctx, "apply")
			if res.ExitCode != report.ExitHealthy || len(rep.Actions) != 0 {
				t.Errorf("second apply: exit %d, actions %+v; want exit 0 and none", res.ExitCode, rep.Actions)
			}

			// undo --last restores every byte; it exits 0 for a complete undo, though the
			// leak is back.
			rep, res = tr.report(ctx, "undo", "--last")
			if len(rep.Actions) != 1 || rep.Actions[0].Status != "reverted" || res.ExitCode != 0 || rep.Healthy {
				t.Errorf("undo: exit %d, actions %+v; want one reverted and the leak back\n%s", res.ExitCode, rep.Actions, res.Stderr)
			}
			if diff := cmp.Diff(before, tr.snapshot()); diff != "" {
				t.Errorf("undo did not restore the files (-before +after):\n%s", diff)
			}
			tr.noPassword()
		})
	}
}

// TestProxyLeakReadOnlyFile: the leaking file sits on a read-only bind mount. Apply fails
// that action with a clear message, leaves the file and its directory as they were, and
// records the failure.
func TestProxyLeakReadOnlyFile(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	serveAEMM(ctx, t, ns)
	tr := newProxyTree(t, ns, map[string]string{"etc/profile.d/proxy.sh": "export http_proxy=http://user:secret@proxy:3128\n"})
	before := tr.snapshot()
	dir := tr.path("etc/profile.d")
	// A private mount namespace, so the read-only mount never reaches the host.
	wrapper := []string{"unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && shift && exec "$@"`, dir, "--"}
	res := tr.exec(ctx, wrapper, "apply")
	rep := decodeReport(t, "apply", res)
	fix := actionsOf(rep, "no_proxy")
	if res.ExitCode != report.ExitFindings || len(fix) != 1 || fix[0].Status != "failed" ||
		!strings.Contains(fix[0].Error, "/etc/profile.d/proxy.sh is unchanged") || !strings.Contains(fix[0].Error, "read-only file system") {
		t.Fatalf("apply on a read-only file: exit %d, actions %+v\n%s", res.ExitCode, rep.Actions, res.Stderr)
	}
	if proxyFinding(rep) == nil {
		t.Error("the leak is not reported as open after the failed fix")
	}
	if diff := cmp.Diff(before, tr.snapshot()); diff != "" {
		t.Errorf("files changed (-before +after):\n%s", diff)
	}
	ledger, err := os.ReadFile(tr.path("state/ledger.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(ledger)), "\n"); len(lines) != 2 ||
		!strings.Contains(lines[0], `"phase":"intent"`) || !strings.Contains(lines[1], `"status":"failed"`) {
		t.Errorf("ledger:\n%s\nwant the intent and the failed result", ledger)
	}
	tr.noPassword()
}

// TestProxyLeakProcesses: a running dockerd (a fake /proc in the tree) still carries the
// leaking proxy after its drop-in is fixed. The finding names the process and its unit; the
// restart is skipped unless the policy allows it, and never run on a --root tree.
func TestProxyLeakProcesses(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	serveAEMM(ctx, t, ns)
	tr := newProxyTree(t, ns, map[string]string{
		"etc/systemd/system/docker.service.d/http-proxy.conf": proxyFixture(t, "http-proxy.conf"),
		"proc/812/environ": proxyFixture(t, "dockerd.environ"),
		"proc/812/cgroup":  proxyFixture(t, "dockerd.cgroup"),
		"proc/812/comm":    "dockerd\n",
		"proc/1/environ":   "HOME=/\x00TERM=linux\x00",
		"proc/1/cgroup":    "0::/init.scope\n",
	})

	rep, res := tr.report(ctx, "check")
	f := proxyFinding(rep)
	if res.ExitCode != report.ExitFindings || f == nil || !strings.Contains(f.Summary, "dockerd[812] in docker.service (go via http://REDACTED@proxy.corp.example:3128)") {
		t.Fatalf("check: exit %d, finding %+v", res.ExitCode, f)
	}

	rep, res = tr.report(ctx, "apply")
	restart := actionsOf(rep, "restart_unit")
	if res.ExitCode != report.ExitFindings || len(restart) != 1 || restart[0].Target != "docker.service" || restart[0].Status != "skipped" ||
		!strings.Contains(restart[0].Error, "allow { restart_units = true }") {
		t.Fatalf("apply: exit %d, actions %+v", res.ExitCode, rep.Actions)
	}
	if fix := actionsOf(rep, "no_proxy"); len(fix) != 1 || fix[0].Status != "applied" {
		t.Errorf("no_proxy actions %+v, want the drop-in fixed", fix)
	}
	if f := proxyFinding(rep); f == nil || !strings.Contains(f.Summary, "dockerd[812]") || strings.Contains(f.Summary, "http-proxy.conf") {
		t.Errorf("after apply the finding should name only the process: %+v", f)
	}

	// Allowed: the restart is attempted, but not on the host for a --root tree.
	if err := os.MkdirAll(tr.path("etc/imdsmend/policy.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tr.path("etc/imdsmend/policy.d/50-restart.hcl"), []byte("settings {\n  allow {\n    restart_units = true\n  }\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, res = tr.report(ctx, "apply")
	restart = actionsOf(rep, "restart_unit")
	if res.ExitCode != report.ExitFindings || len(restart) != 1 || restart[0].Status != "failed" || !strings.Contains(restart[0].Error, "is not the running system") {
		t.Errorf("apply with restarts allowed: exit %d, actions %+v", res.ExitCode, rep.Actions)
	}
	tr.noPassword()
}

// TestProxyRulesMatchCurl checks the curl column of the NO_PROXY table against the curl
// installed here: inside a namespace, IMDS on 169.254.169.254 and [fd00:ec2::254], a fake
// proxy on 127.0.0.1:3128 that answers 418, and curl run with http_proxy and each no_proxy.
func TestProxyRulesMatchCurl(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	serveSim(sim.FaultOK)(ctx, t, ns)
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:3128"); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	}()

	var cases []struct {
		NoProxy      string `json:"no_proxy"`
		Host         string `json:"host"`
		Curl         bool   `json:"curl"`
		CurlVersions bool   `json:"curl_versions_differ"`
	}
	if err := json.Unmarshal([]byte(proxyFixture(t, "noproxy_cases.json")), &cases); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		if tc.CurlVersions {
			continue // the table takes the curl version that proxies; this one may not
		}
		url := "http://" + tc.Host + "/latest/meta-data/instance-id"
		if strings.Contains(tc.Host, ":") {
			url = "http://[" + tc.Host + "]/latest/meta-data/instance-id"
		}
		env := []string{"http_proxy=http://127.0.0.1:3128", "no_proxy=" + tc.NoProxy,
			"HTTP_PROXY=", "NO_PROXY=", "all_proxy=", "ALL_PROXY=", "https_proxy=", "HTTPS_PROXY="}
		res, err := ns.Exec(ctx, env, "curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", url)
		if err != nil {
			t.Fatal(err)
		}
		proxied := res.Stdout == fmt.Sprint(http.StatusTeapot)
		if res.Stdout == "000" {
			t.Errorf("curl %s with no_proxy=%q got no answer: %s", url, tc.NoProxy, res.Stderr)
			continue
		}
		if proxied == tc.Curl {
			t.Errorf("curl with no_proxy=%q: proxied %v for %s, but the table says bypass=%v", tc.NoProxy, proxied, tc.Host, tc.Curl)
		}
	}
}

// TestProxySecretsNeverShown: files that set a proxy often hold other secrets beside it
// (an AWS key pair, a proxy password under its own name). plan's diff in text and JSON,
// apply's journal entries and the ledger show them masked; only the 0600 backup keeps
// the exact bytes, and undo restores them.
func TestProxySecretsNeverShown(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	serveAEMM(ctx, t, ns)
	j := startJournald(ctx, t, ns, journaldOptions{})
	// None of these looks random enough to be masked as a token: only their keys give them away.
	secrets := []string{"EXAMPLEKEYwJalr/K7MDENG", "hunter2hunter2", "IQoJb3JpZ2luX2VjEXAMPLE", "two words"}
	dropIn := "[Service]\nEnvironment=\"HTTP_PROXY=http://proxy.corp:3128\" \"AWS_SECRET_ACCESS_KEY=" + secrets[0] + "\" \"proxy_password=" + secrets[1] + "\"\n"
	script := "export http_proxy=http://proxy.corp:3128 AWS_SESSION_TOKEN=" + secrets[2] + " PROXY_PASS='" + secrets[3] + "'\n"
	tr := newProxyTree(t, ns, map[string]string{
		"etc/systemd/system/docker.service.d/http-proxy.conf": dropIn,
		"etc/profile.d/proxy.sh":                              script,
	})
	before := tr.snapshot()
	var shown []string
	run := func(format, command string, args ...string) harness.Result {
		t.Helper()
		argv := append([]string{command, "--root", tr.root, "--policy", "/etc/imdsmend/policy.hcl", "--state-dir", "/state", "--format", format}, args...)
		res := j.exec(ctx, nil, bins.Imdsmend, argv...)
		shown = append(shown, res.Stdout, res.Stderr)
		return res
	}

	if res := run("text", "plan"); res.ExitCode != report.ExitFindings || !strings.Contains(res.Stdout, `"AWS_SECRET_ACCESS_KEY=REDACTED" "proxy_password=REDACTED"`) {
		t.Errorf("plan (text): exit %d; want the diff with the secrets masked\n%s", res.ExitCode, res.Stdout)
	}
	res := run("json", "plan")
	if rep := decodeReport(t, "plan", res); len(actionsOf(rep, "no_proxy")) != 2 {
		t.Fatalf("plan (json): actions %+v; want two no_proxy edits", rep.Actions)
	}
	res = run("json", "apply")
	if rep := decodeReport(t, "apply", res); len(actionsOf(rep, "no_proxy")) != 2 || actionsOf(rep, "no_proxy")[0].Status != "applied" {
		t.Fatalf("apply: actions %+v\n%s", rep.Actions, res.Stderr)
	}
	// undo says what it took back: the diff inverted, masked alike.
	res = run("text", "undo", "--last")
	if res.ExitCode == report.ExitError || !strings.Contains(res.Stdout, `-Environment="HTTP_PROXY=http://proxy.corp:3128" "AWS_SECRET_ACCESS_KEY=REDACTED" "proxy_password=REDACTED"`) {
		t.Errorf("undo: exit %d; want the inverse diff with the secrets masked\n%s\n%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	if diff := cmp.Diff(before, tr.snapshot()); diff != "" {
		t.Errorf("undo did not restore the files byte for byte (-before +after):\n%s", diff)
	}

	journal := string(j.export(ctx))
	if !strings.Contains(journal, "AWS_SESSION_TOKEN=REDACTED") {
		t.Errorf("the journal lacks the applied diff; the check below would prove nothing:\n%s", journal)
	}
	ledger, err := os.ReadFile(tr.path("state/ledger.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		for i, out := range append(shown, journal, string(ledger)) {
			if strings.Contains(out, s) {
				t.Errorf("secret %q shown in output %d (of %d; the last two are the journal and the ledger):\n%s", s, i, len(shown)+2, out)
			}
		}
	}
	// The exact bytes live in the backups only, readable by root alone.
	backups, err := filepath.Glob(tr.path("state/backups/*"))
	if err != nil || len(backups) != 2 {
		t.Fatalf("backups %v (%v); want two", backups, err)
	}
	for _, b := range backups {
		if st, err := os.Stat(b); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("backup %s: %v, mode %v; want 0600", b, err, st.Mode())
		}
	}
}
