package remediate

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/imdsmend/imdsmend/tests/tree"
	"github.com/zclconf/go-cty/cty"
)

// fixture reads a file captured for the proxy facts' tests.
func fixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "facts", "proxy", "testdata", "proxy", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// userinfo is the user and password of a URL, as plans hide them.
var userinfo = regexp.MustCompile(`://[^@/\s"]*@`)

func testEnv(root string, ipv6 bool) *Env {
	p := paths.New(root)
	p.StateDir = "/var/lib/imdsmend"
	return &Env{Paths: p, IPv6: ipv6, Allow: func(types.Permission) bool { return true }}
}

func filesArg(files ...string) cty.Value {
	vals := make([]cty.Value, len(files))
	for i, f := range files {
		vals[i] = cty.StringVal(f)
	}
	return cty.ObjectVal(map[string]cty.Value{"files": cty.ListVal(vals)})
}

func TestNoProxyFixes(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		ipv6  bool
		fix   string // the file to fix, as on the system
		want  string // its content afterwards
	}{
		{"Ubuntu /etc/environment with both spellings",
			map[string]string{"etc/environment": fixture(t, "environment.ubuntu")}, false, "/etc/environment",
			strings.NewReplacer(`no_proxy="localhost,127.0.0.1,::1"`, `no_proxy="localhost,127.0.0.1,::1,169.254.169.254"`,
				`NO_PROXY="localhost,127.0.0.1,::1"`, `NO_PROXY="localhost,127.0.0.1,::1,169.254.169.254"`).Replace(fixture(t, "environment.ubuntu"))},
		{"profile script from the field",
			map[string]string{"etc/profile.d/proxy.sh": fixture(t, "proxy.sh")}, false, "/etc/profile.d/proxy.sh",
			strings.NewReplacer(`no_proxy="127.0.0.1,localhost"`, `no_proxy="127.0.0.1,localhost,169.254.169.254"`,
				`NO_PROXY="127.0.0.1,localhost"`, `NO_PROXY="127.0.0.1,localhost,169.254.169.254"`).Replace(fixture(t, "proxy.sh"))},
		{"a script that sets only the proxy gets both spellings, keeping what it inherits",
			map[string]string{"etc/environment": "no_proxy=localhost\n", "etc/profile.d/p.sh": "# corp\nexport http_proxy=http://p:3128 # keep\nalias ll='ls -l'\n"},
			false, "/etc/profile.d/p.sh",
			"# corp\nexport http_proxy=http://p:3128 # keep\nexport no_proxy=\"localhost,169.254.169.254\"\nexport NO_PROXY=\"localhost,169.254.169.254\"\nalias ll='ls -l'\n"},
		{"the missing spelling copies the other one",
			map[string]string{"etc/profile.d/p.sh": "export http_proxy=http://p:3128 \\\n  no_proxy=${no_proxy:-localhost}\n"},
			false, "/etc/profile.d/p.sh",
			"export http_proxy=http://p:3128 \\\n  no_proxy=${no_proxy:-localhost},169.254.169.254\nexport NO_PROXY=${no_proxy:-localhost},169.254.169.254\n"},
		{"Docker's drop-in",
			map[string]string{"etc/systemd/system/docker.service.d/http-proxy.conf": fixture(t, "http-proxy.conf")}, false,
			"/etc/systemd/system/docker.service.d/http-proxy.conf",
			"[Service]\nEnvironment=\"HTTP_PROXY=http://user:secret@proxy:3128\"\nEnvironment=\"HTTPS_PROXY=https://proxy.example.com:3129\"\n" +
				"Environment=\"NO_PROXY=localhost,127.0.0.1,docker-registry.example.com,.corp,169.254.169.254\"\n" +
				"Environment=\"no_proxy=localhost,127.0.0.1,docker-registry.example.com,.corp,169.254.169.254\"\n"},
		{"several assignments per line and a continuation",
			map[string]string{"etc/systemd/system/containerd.service.d/proxy.conf": fixture(t, "containerd-proxy.conf")}, false,
			"/etc/systemd/system/containerd.service.d/proxy.conf",
			"[Service]\nEnvironment=HTTP_PROXY=http://proxy.corp.example:3128 HTTPS_PROXY=http://proxy.corp.example:3128 \\\n" +
				"    NO_PROXY=localhost,10.0.0.0/8,169.254.169.254\nEnvironment=no_proxy=localhost,10.0.0.0/8,169.254.169.254\n"},
		{"DefaultEnvironment, IPv6 on",
			map[string]string{"etc/systemd/system.conf.d/proxy.conf": fixture(t, "proxy-defaults.conf")}, true,
			"/etc/systemd/system.conf.d/proxy.conf",
			"# Proxy for every service (systemd-system.conf(5), DefaultEnvironment=).\n[Manager]\n" +
				"DefaultEnvironment=\"http_proxy=http://proxy.corp.example:3128\" \"no_proxy=localhost,.corp.example,169.254.169.254,fd00:ec2::254\"\n" +
				"DefaultEnvironment=\"NO_PROXY=localhost,.corp.example,169.254.169.254,fd00:ec2::254\"\n"},
		{"daemon.json from Docker's docs",
			map[string]string{"etc/docker/daemon.json": fixture(t, "daemon.json")}, false, "/etc/docker/daemon.json",
			strings.Replace(fixture(t, "daemon.json"), `127.0.0.0/8"`, `127.0.0.0/8,169.254.169.254"`, 1)},
		{"daemon.json without no-proxy keeps the unit's list",
			map[string]string{"etc/docker/daemon.json": "{\n\t\"proxies\": {\n\t\t\"http-proxy\": \"http://p:3128\"\n\t},\n\t\"debug\": true\n}\n",
				"etc/systemd/system/docker.service.d/np.conf": "[Service]\nEnvironment=NO_PROXY=.corp\n"}, false, "/etc/docker/daemon.json",
			"{\n\t\"proxies\": {\n\t\t\"http-proxy\": \"http://p:3128\",\n\t\t\"no-proxy\": \".corp,169.254.169.254\"\n\t},\n\t\"debug\": true\n}\n"},
		{"a reset drops what came before it",
			map[string]string{"etc/systemd/system/a.service.d/p.conf": "[Service]\nEnvironment=NO_PROXY=169.254.169.254\nEnvironment=\nEnvironment=HTTP_PROXY=http://p\n"},
			false, "/etc/systemd/system/a.service.d/p.conf",
			"[Service]\nEnvironment=NO_PROXY=169.254.169.254\nEnvironment=\nEnvironment=HTTP_PROXY=http://p\nEnvironment=\"no_proxy=169.254.169.254\"\nEnvironment=\"NO_PROXY=169.254.169.254\"\n"},
		{"a here-document body is data: the edit lands after the real assignment",
			map[string]string{"etc/profile.d/p.sh": "export http_proxy=http://p:3128\ncat > /etc/app.conf <<EOF\nhttp_proxy=http://app:1\nno_proxy=app\nEOF\n"},
			false, "/etc/profile.d/p.sh",
			"export http_proxy=http://p:3128\nexport no_proxy=\"169.254.169.254\"\nexport NO_PROXY=\"169.254.169.254\"\ncat > /etc/app.conf <<EOF\nhttp_proxy=http://app:1\nno_proxy=app\nEOF\n"},
		{"CRLF, no final newline",
			map[string]string{"etc/environment": "PATH=/usr/bin\r\nhttp_proxy=http://p:3128"}, false, "/etc/environment",
			"PATH=/usr/bin\r\nhttp_proxy=http://p:3128\r\nno_proxy=169.254.169.254\r\nNO_PROXY=169.254.169.254"},
		{"edited through a symlink",
			map[string]string{"etc/environment": "->../srv/environment", "srv/environment": "http_proxy=http://p\nno_proxy=\n"}, false, "/etc/environment",
			"http_proxy=http://p\nno_proxy=169.254.169.254\nNO_PROXY=169.254.169.254\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			tree.Write(t, root, tt.files)
			env := testEnv(root, tt.ipv6)
			p := env.Paths.File(tt.fix)
			before, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, 0o640); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(p, 4242, 4343); err != nil {
				t.Fatal(err)
			}
			linkBefore, _ := os.Readlink(filepath.Join(root, tt.fix))
			ctx := context.Background()
			fx := NoProxy{}
			changes, err := fx.Plan(ctx, env, filesArg(tt.fix))
			if err != nil || len(changes) != 1 || changes[0].Status != "" {
				t.Fatalf("Plan = %+v, %v; want one change", changes, err)
			}
			c := changes[0]
			if strings.Contains(c.Detail, "secret") || strings.Contains(string(c.Data), "secret") {
				t.Errorf("the plan shows the proxy password:\n%s\n%s", c.Detail, c.Data)
			}
			if err := fx.Apply(ctx, env, c); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			got, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("file after apply (-want +got):\n%s", diff)
			}
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if sys := st.Sys().(*syscall.Stat_t); st.Mode().Perm() != 0o640 || sys.Uid != 4242 || sys.Gid != 4343 {
				t.Errorf("mode %v owner %d:%d, want 0640 4242:4343", st.Mode().Perm(), sys.Uid, sys.Gid)
			}
			if link, _ := os.Readlink(filepath.Join(root, tt.fix)); link != linkBefore {
				t.Errorf("symlink now %q, was %q", link, linkBefore)
			}
			// The plan's diff shows exactly the lines that changed.
			shown := userinfo.ReplaceAllString(strings.ReplaceAll(tt.want, "\r", ""), "://REDACTED@")
			for _, l := range strings.Split(c.Detail, "\n") {
				if added, ok := strings.CutPrefix(l, "+"); ok && !strings.HasPrefix(l, "+++") && !strings.Contains(shown, added+"\n") && !strings.HasSuffix(shown, added) {
					t.Errorf("the plan shows %q, which is not a line of the result", added)
				}
			}
			if again, err := fx.Plan(ctx, env, filesArg(tt.fix)); err != nil || len(again) != 0 {
				t.Errorf("second Plan = %+v, %v; want nothing to do", again, err)
			}
			if err := fx.Undo(ctx, env, c); err != nil {
				t.Fatalf("Undo: %v", err)
			}
			restored, _ := os.ReadFile(p)
			if string(restored) != string(before) {
				t.Errorf("undo left %q, want %q", restored, before)
			}
			if st, _ := os.Stat(p); st.Mode().Perm() != 0o640 || st.Sys().(*syscall.Stat_t).Uid != 4242 {
				t.Errorf("undo changed mode or owner: %v", st.Mode())
			}
		})
	}
}

func TestNoProxyPlanDetail(t *testing.T) {
	root := t.TempDir()
	tree.Write(t, root, map[string]string{"etc/systemd/system/docker.service.d/http-proxy.conf": fixture(t, "http-proxy.conf")})
	env := testEnv(root, false)
	env.Allow = func(p types.Permission) bool { return p == types.PermFiles }
	changes, err := NoProxy{}.Plan(context.Background(), env, filesArg("/etc/systemd/system/docker.service.d/http-proxy.conf"))
	if err != nil || len(changes) != 1 {
		t.Fatalf("Plan = %v, %v", changes, err)
	}
	want := `add 169.254.169.254 to no_proxy and NO_PROXY in /etc/systemd/system/docker.service.d/http-proxy.conf
--- /etc/systemd/system/docker.service.d/http-proxy.conf
+++ /etc/systemd/system/docker.service.d/http-proxy.conf
@@ line 4 @@
-Environment="NO_PROXY=localhost,127.0.0.1,docker-registry.example.com,.corp"
+Environment="NO_PROXY=localhost,127.0.0.1,docker-registry.example.com,.corp,169.254.169.254"
+Environment="no_proxy=localhost,127.0.0.1,docker-registry.example.com,.corp,169.254.169.254"
docker.service keeps its environment until it restarts: allow restart_units in the policy to let imdsmend restart it, or run ` + "`systemctl daemon-reload && systemctl try-restart docker.service`"
	if diff := cmp.Diff(want, changes[0].Detail); diff != "" {
		t.Errorf("detail (-want +got):\n%s", diff)
	}

	// A line that holds the password as well shows it redacted.
	tree.Write(t, root, map[string]string{"etc/profile.d/p.sh": "export http_proxy=http://u:pw@p:3128 no_proxy=localhost\n"})
	changes, err = NoProxy{}.Plan(context.Background(), env, filesArg("/etc/profile.d/p.sh"))
	if err != nil || len(changes) != 1 {
		t.Fatalf("Plan = %v, %v", changes, err)
	}
	if d := changes[0].Detail; strings.Contains(d, "pw") || !strings.Contains(d, "-export http_proxy=http://REDACTED@p:3128 no_proxy=localhost\n") ||
		!strings.Contains(d, "+export http_proxy=http://REDACTED@p:3128 no_proxy=localhost,169.254.169.254\n+export NO_PROXY=localhost,169.254.169.254\n") {
		t.Errorf("detail:\n%s", d)
	}
}

// TestNoProxyUndo: undo says what it did, as the plan's diff taken back with secrets
// hidden, and an undo repeated after a crash (the original already back, or the ledger
// holding only the intent) succeeds without touching the file.
func TestNoProxyUndo(t *testing.T) {
	const dropIn = "/etc/systemd/system/docker.service.d/http-proxy.conf"
	orig := "[Service]\nEnvironment=\"HTTP_PROXY=http://u:pw@proxy.corp:3128\" \"proxy_password=hunter2hunter2\"\n"
	root := t.TempDir()
	tree.Write(t, root, map[string]string{dropIn[1:]: orig})
	env := testEnv(root, false)
	ctx := context.Background()
	changes, err := NoProxy{}.Plan(ctx, env, filesArg(dropIn))
	if err != nil || len(changes) != 1 {
		t.Fatalf("Plan = %v, %v", changes, err)
	}
	intent := *changes[0] // as the ledger's intent record holds it: no backup yet
	applied := changes[0]
	if err := (NoProxy{}).Apply(ctx, env, applied); err != nil {
		t.Fatal(err)
	}

	// Only the intent survived a crash, and the edit is in place: nothing to restore from.
	if err := (NoProxy{}).Undo(ctx, env, &intent); err == nil || !strings.Contains(err.Error(), "holds no backup") {
		t.Errorf("Undo from the intent of an applied edit = %v, want a refusal", err)
	}

	if err := (NoProxy{}).Undo(ctx, env, applied); err != nil {
		t.Fatal(err)
	}
	want := "restored " + dropIn + " from its backup, as it was before imdsmend edited it\n" +
		"--- " + dropIn + "\n+++ " + dropIn + "\n@@ line 2 @@\n" +
		"-Environment=\"HTTP_PROXY=http://REDACTED@proxy.corp:3128\" \"proxy_password=REDACTED\"\n" +
		"-Environment=\"no_proxy=169.254.169.254\"\n" +
		"-Environment=\"NO_PROXY=169.254.169.254\"\n" +
		"+Environment=\"HTTP_PROXY=http://REDACTED@proxy.corp:3128\" \"proxy_password=REDACTED\""
	if diff := cmp.Diff(want, applied.Detail); diff != "" {
		t.Errorf("undo detail (-want +got):\n%s", diff)
	}
	if got, _ := os.ReadFile(env.Paths.File(dropIn)); string(got) != orig {
		t.Fatalf("undo left %q", got)
	}

	// Repeated after a crash before its result was recorded, from either record.
	for _, c := range []*Change{applied, &intent} {
		c.Detail = ""
		if err := (NoProxy{}).Undo(ctx, env, c); err != nil || c.Detail != "nothing to restore: "+dropIn+" already holds its original content" {
			t.Errorf("repeated Undo = %v, detail %q; want success saying nothing was done", err, c.Detail)
		}
	}
	if got, _ := os.ReadFile(env.Paths.File(dropIn)); string(got) != orig {
		t.Errorf("repeated undo changed the file: %q", got)
	}
}

func TestNoProxyRefuses(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		fix   string
		err   string
	}{
		{"a blank ends curl's list", map[string]string{"etc/environment": "http_proxy=http://p\nno_proxy=\"localhost 10.0.0.1\"\n"},
			"/etc/environment", `/etc/environment:2: no_proxy="localhost 10.0.0.1,169.254.169.254" would still not exclude 169.254.169.254 for curl and Go (a blank ends curl's list); fix that line by hand`},
		{"not a proxy file", map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\n"},
			"/etc/passwd", "cannot edit /etc/passwd: it is not a file imdsmend reads proxy settings from (docs/proxy.md)"},
		{"broken daemon.json", map[string]string{"etc/docker/daemon.json": `{"proxies": {"http-proxy": "x"`},
			"/etc/docker/daemon.json", "cannot edit /etc/docker/daemon.json: /etc/docker/daemon.json: not JSON: unexpected end of file"},
		{"quotes inside the name", map[string]string{"etc/systemd/system/a.service.d/p.conf": "[Service]\nEnvironment=HTTP_PROXY=http://p \"NO\"_PROXY=x\n"},
			"/etc/systemd/system/a.service.d/p.conf", "/etc/systemd/system/a.service.d/p.conf:2: NO_PROXY is written with quotes inside its name; add 169.254.169.254 to it by hand"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			tree.Write(t, root, tt.files)
			changes, err := NoProxy{}.Plan(context.Background(), testEnv(root, false), filesArg(tt.fix))
			if err != nil || len(changes) != 1 || changes[0].Status != types.StatusFailed || changes[0].Error != tt.err {
				t.Errorf("Plan = %+v, %v; want one failed change: %s", changes, err, tt.err)
			}
		})
	}
}

func TestNoProxyApplyChecksTheFile(t *testing.T) {
	root := t.TempDir()
	tree.Write(t, root, map[string]string{"etc/environment": "http_proxy=http://p\n"})
	env := testEnv(root, false)
	ctx := context.Background()
	changes, err := NoProxy{}.Plan(ctx, env, filesArg("/etc/environment"))
	if err != nil || len(changes) != 1 {
		t.Fatal(changes, err)
	}
	// Someone edits the file between plan and apply: nothing is written.
	edited := "http_proxy=http://other\n"
	tree.Write(t, root, map[string]string{"etc/environment": edited})
	err = NoProxy{}.Apply(ctx, env, changes[0])
	if err == nil || !strings.Contains(err.Error(), "/etc/environment changed since it was planned; nothing was written") {
		t.Errorf("Apply = %v, want a refusal", err)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "etc/environment")); string(got) != edited {
		t.Errorf("file = %q, want it untouched", got)
	}

	// Undo refuses to overwrite a file changed after the edit, and says where the original is.
	tree.Write(t, root, map[string]string{"etc/environment": "http_proxy=http://p\n"})
	changes, _ = NoProxy{}.Plan(ctx, env, filesArg("/etc/environment"))
	if err := (NoProxy{}).Apply(ctx, env, changes[0]); err != nil {
		t.Fatal(err)
	}
	var d noProxyData
	if err := json.Unmarshal(changes[0].Data, &d); err != nil {
		t.Fatal(err)
	}
	if backup, err := os.ReadFile(env.Paths.File(d.Backup)); err != nil || string(backup) != "http_proxy=http://p\n" {
		t.Errorf("backup %s = %q, %v", d.Backup, backup, err)
	}
	tree.Write(t, root, map[string]string{"etc/environment": "http_proxy=http://p\nno_proxy=169.254.169.254\nNO_PROXY=169.254.169.254\nEDITOR=vi\n"})
	err = NoProxy{}.Undo(ctx, env, changes[0])
	if err == nil || !strings.Contains(err.Error(), "changed since imdsmend edited it") || !strings.Contains(err.Error(), env.Paths.File(d.Backup)) {
		t.Errorf("Undo = %v, want a refusal naming the backup", err)
	}
}

func TestNoProxyReadOnlyFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for chattr")
	}
	root := t.TempDir()
	tree.Write(t, root, map[string]string{"etc/environment": "http_proxy=http://p\n"})
	p := filepath.Join(root, "etc/environment")
	env := testEnv(root, false)
	ctx := context.Background()
	changes, err := NoProxy{}.Plan(ctx, env, filesArg("/etc/environment"))
	if err != nil || len(changes) != 1 {
		t.Fatal(changes, err)
	}
	// An immutable file: rename over it fails, the temporary file goes, the file stays.
	if out, err := exec.Command("chattr", "+i", p).CombinedOutput(); err != nil {
		t.Skipf("chattr +i not supported here: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", p).Run() })
	err = NoProxy{}.Apply(ctx, env, changes[0])
	if err == nil || !strings.Contains(err.Error(), "/etc/environment is unchanged") {
		t.Errorf("Apply = %v, want a clear failure", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "http_proxy=http://p\n" {
		t.Errorf("file = %q", got)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "etc"))
	if len(entries) != 1 {
		t.Errorf("left behind in /etc: %v", entries)
	}
}

// FuzzNoProxy: whatever a file holds, a planned edit only inserts, and leaves nothing to
// do for a second plan. (The edit is made in memory: Apply's fsyncs would make each run
// take a second on a busy disk; TestNoProxyFixes covers Apply and Undo.)
func FuzzNoProxy(f *testing.F) {
	targets := []string{"/etc/environment", "/etc/profile.d/p.sh", "/etc/systemd/system/x.service.d/p.conf", "/etc/docker/daemon.json", "/etc/systemd/system.conf.d/p.conf"}
	for i, name := range []string{"environment.ubuntu", "proxy.sh", "http-proxy.conf", "daemon.json", "proxy-defaults.conf"} {
		data, err := os.ReadFile(filepath.Join("..", "facts", "proxy", "testdata", "proxy", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint8(i))
	}
	f.Add([]byte("export http_proxy=x no_proxy=\"a\"'b'\\\n NO_PROXY=${no_proxy:+$no_proxy,}\r\n"), uint8(1))
	f.Add([]byte("[Service]\nEnvironment=HTTP_PROXY=x\nEnvironment=\nEnvironment=no_proxy=\"a b\"\n"), uint8(2))
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		target := targets[int(which)%len(targets)]
		p := filepath.Join(root, target)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(p)
		env := testEnv(root, which%2 == 0)
		ctx := context.Background()
		changes, err := NoProxy{}.Plan(ctx, env, filesArg(target))
		if err != nil || len(changes) != 1 || changes[0].Status == types.StatusFailed {
			return // nothing to do, or refused with a reason
		}
		var d noProxyData
		if err := json.Unmarshal(changes[0].Data, &d); err != nil {
			t.Fatal(err)
		}
		updated, err := applyInserts(data, d.Inserts)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, updated, 0o644); err != nil {
			t.Fatal(err)
		}
		again, err := NoProxy{}.Plan(ctx, env, filesArg(target))
		if err != nil || len(again) != 0 {
			t.Fatalf("after the edit, plan again = %+v, %v\nbefore: %q\nafter:  %q", again, err, data, updated)
		}
	})
}
