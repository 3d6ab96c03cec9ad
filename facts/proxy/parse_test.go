package proxy

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// assign is an EnvAssignment as text, for readable comparisons: the offsets are checked
// through the text they cut out of the file.
type assign struct {
	Name, Value string
	Line        int
	Directive   string
	LineText    string // data[LineStart:LineEnd]
	Word        string // data[WordStart:WordEnd]
	ValueText   string // data[ValueStart:ValueEnd]: where an appended entry lands
}

func view(t *testing.T, data []byte, as []EnvAssignment) []assign {
	t.Helper()
	var out []assign
	for _, a := range as {
		checkOffsets(t, data, a)
		out = append(out, assign{a.Name, a.Value, a.Line, a.Directive, string(data[a.LineStart:a.LineEnd]),
			string(data[a.WordStart:a.WordEnd]), string(data[a.ValueStart:a.ValueEnd])})
	}
	return out
}

// checkOffsets asserts the invariants editors rely on.
func checkOffsets(t *testing.T, data []byte, a EnvAssignment) {
	t.Helper()
	if a.Name == "" || a.Irregular {
		if a.LineStart > a.LineEnd || a.LineEnd > len(data) {
			t.Fatalf("reset at line %d: bad line bounds %d..%d", a.Line, a.LineStart, a.LineEnd)
		}
		return
	}
	ok := 0 <= a.LineStart && a.LineStart <= a.WordStart && a.WordStart <= a.NameStart &&
		a.NameStart < a.ValueStart && a.ValueStart <= a.ValueEnd && a.ValueEnd <= a.WordEnd &&
		a.WordEnd <= len(data) && a.LineEnd <= len(data) && a.WordStart <= a.LineEnd
	if !ok {
		t.Fatalf("%s at line %d: offsets out of order: line %d..%d word %d..%d name %d value %d..%d (len %d)",
			a.Name, a.Line, a.LineStart, a.LineEnd, a.WordStart, a.WordEnd, a.NameStart, a.ValueStart, a.ValueEnd, len(data))
	}
	name := a.Name
	if _, docker := dockerProxyKeys[a.Directive]; docker {
		name = a.Directive // daemon.json keys stand for both spellings
	}
	if a.NameStart+len(name) > len(data) || string(data[a.NameStart:a.NameStart+len(name)]) != name {
		t.Fatalf("%s at line %d: name offset %d does not point at %q", a.Name, a.Line, a.NameStart, name)
	}
	if a.LineEnd < len(data) && data[a.LineEnd] != '\n' && data[a.LineEnd] != '\r' {
		t.Fatalf("%s at line %d: line end %d is not at a line ending", a.Name, a.Line, a.LineEnd)
	}
}

func TestParseEnvironment(t *testing.T) {
	tests := []struct {
		name, data string
		want       []assign
	}{
		{"plain and quoted",
			"PATH=\"/usr/bin:/bin\"\nhttp_proxy=http://p:3128\nno_proxy='localhost'\n",
			[]assign{
				{"PATH", "/usr/bin:/bin", 1, "", `PATH="/usr/bin:/bin"`, `PATH="/usr/bin:/bin"`, "/usr/bin:/bin"},
				{"http_proxy", "http://p:3128", 2, "", "http_proxy=http://p:3128", "http_proxy=http://p:3128", "http://p:3128"},
				{"no_proxy", "localhost", 3, "", "no_proxy='localhost'", "no_proxy='localhost'", "localhost"},
			}},
		{"comments, export, blanks, CRLF, no final newline",
			"# proxy\r\n  export HTTP_PROXY=\"http://p\"  # corp\r\nbad-key=1\r\n=x\r\nNO_PROXY=a,b",
			[]assign{
				{"HTTP_PROXY", "http://p", 2, "", `  export HTTP_PROXY="http://p"  # corp`, `HTTP_PROXY="http://p"`, "http://p"},
				{"NO_PROXY", "a,b", 5, "", "NO_PROXY=a,b", "NO_PROXY=a,b", "a,b"},
			}},
		{"'#' ends the value even in quotes; empty value",
			"no_proxy=\"a#b\"\nNO_PROXY=\n",
			[]assign{
				{"no_proxy", "a", 1, "", `no_proxy="a#b"`, `no_proxy="a`, "a"},
				{"NO_PROXY", "", 2, "", "NO_PROXY=", "NO_PROXY=", ""},
			}},
		{"continuation",
			"no_proxy=a,\\\nb\nX=1\n",
			[]assign{
				{"no_proxy", "a,b", 1, "", "no_proxy=a,\\\nb", "no_proxy=a,\\\nb", "a,\\\nb"},
				{"X", "1", 3, "", "X=1", "X=1", "1"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.data)
			if diff := cmp.Diff(tt.want, view(t, data, ParseEnvironment(data))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// shellValues parses a script and expands its values as /etc/profile would.
func shellValues(t *testing.T, data []byte, inherited map[string]string) ([]assign, error) {
	t.Helper()
	as, err := ParseShell(data)
	f := &File{Format: FormatShell, Assignments: as}
	base := &File{Format: FormatEnvironment}
	for k, v := range inherited {
		base.Assignments = append(base.Assignments, EnvAssignment{Name: k, Value: v})
	}
	evalScope(scope{{base, f}})
	return view(t, data, f.Assignments), err
}

func TestParseShell(t *testing.T) {
	tests := []struct {
		name, data string
		inherited  map[string]string
		want       []assign
		err        string
	}{
		{"profile.d script from the field", string(readTestdata(t, "proxy.sh")), nil, []assign{
			{"PROXY_URL", "http://proxy.corp.example:3128/", 2, "", `PROXY_URL="http://proxy.corp.example:3128/"`, `PROXY_URL="http://proxy.corp.example:3128/"`, "http://proxy.corp.example:3128/"},
			{"http_proxy", "http://proxy.corp.example:3128/", 4, "export", `export http_proxy="$PROXY_URL"`, `http_proxy="$PROXY_URL"`, "$PROXY_URL"},
			{"https_proxy", "http://proxy.corp.example:3128/", 5, "export", `export https_proxy="$PROXY_URL"`, `https_proxy="$PROXY_URL"`, "$PROXY_URL"},
			{"ftp_proxy", "http://proxy.corp.example:3128/", 6, "export", `export ftp_proxy="$PROXY_URL"`, `ftp_proxy="$PROXY_URL"`, "$PROXY_URL"},
			{"no_proxy", "127.0.0.1,localhost", 7, "export", `export no_proxy="127.0.0.1,localhost"`, `no_proxy="127.0.0.1,localhost"`, "127.0.0.1,localhost"},
			{"HTTP_PROXY", "http://proxy.corp.example:3128/", 10, "export", `export HTTP_PROXY="$PROXY_URL"`, `HTTP_PROXY="$PROXY_URL"`, "$PROXY_URL"},
			{"HTTPS_PROXY", "http://proxy.corp.example:3128/", 11, "export", `export HTTPS_PROXY="$PROXY_URL"`, `HTTPS_PROXY="$PROXY_URL"`, "$PROXY_URL"},
			{"FTP_PROXY", "http://proxy.corp.example:3128/", 12, "export", `export FTP_PROXY="$PROXY_URL"`, `FTP_PROXY="$PROXY_URL"`, "$PROXY_URL"},
			{"NO_PROXY", "127.0.0.1,localhost", 13, "export", `export NO_PROXY="127.0.0.1,localhost"`, `NO_PROXY="127.0.0.1,localhost"`, "127.0.0.1,localhost"},
		}, ""},
		{"several per line, quoting, a command's own environment is not an assignment",
			"export A=1 B='two words' C=$A\nhttp_proxy=x curl -s http://example.com\nno_proxy=y; export no_proxy\n", nil, []assign{
				{"A", "1", 1, "export", "export A=1 B='two words' C=$A", "A=1", "1"},
				{"B", "two words", 1, "export", "export A=1 B='two words' C=$A", "B='two words'", "two words"},
				{"C", "1", 1, "export", "export A=1 B='two words' C=$A", "C=$A", "$A"},
				{"no_proxy", "y", 3, "", "no_proxy=y; export no_proxy", "no_proxy=y", "y"},
			}, ""},
		{"control flow is ignored, comments are not code",
			"# export http_proxy=commented\nif [ -r /etc/corp ]; then\n  export http_proxy=http://a:b@c:1#x\nfi\n", nil, []assign{
				{"http_proxy", "http://a:b@c:1#x", 3, "export", "  export http_proxy=http://a:b@c:1#x", "http_proxy=http://a:b@c:1#x", "http://a:b@c:1#x"},
			}, ""},
		{"expansions of the inherited environment",
			"export no_proxy=${no_proxy:+$no_proxy,}169.254.169.254\nexport NO_PROXY=\"${NO_PROXY-unset}\"\nno_proxy+=\",x\"\nexport Y=\"$(cat /etc/np),`hostname`,${#no_proxy}\"\n",
			map[string]string{"no_proxy": "localhost"}, []assign{
				{"no_proxy", "localhost,169.254.169.254", 1, "export", "export no_proxy=${no_proxy:+$no_proxy,}169.254.169.254", "no_proxy=${no_proxy:+$no_proxy,}169.254.169.254", "${no_proxy:+$no_proxy,}169.254.169.254"},
				{"NO_PROXY", "unset", 2, "export", `export NO_PROXY="${NO_PROXY-unset}"`, `NO_PROXY="${NO_PROXY-unset}"`, "${NO_PROXY-unset}"},
				{"no_proxy", "localhost,169.254.169.254,x", 3, "", `no_proxy+=",x"`, `no_proxy+=",x"`, ",x"},
				{"Y", ",,", 4, "export", "export Y=\"$(cat /etc/np),`hostname`,${#no_proxy}\"", "Y=\"$(cat /etc/np),`hostname`,${#no_proxy}\"", "$(cat /etc/np),`hostname`,${#no_proxy}"},
			}, ""},
		{"CRLF, continuation, no final newline",
			"export \\\r\n  no_proxy=a\r\nexport NO_PROXY='b'", nil, []assign{
				{"no_proxy", "a", 2, "export", "  no_proxy=a", "no_proxy=a", "a"},
				{"NO_PROXY", "b", 3, "export", "export NO_PROXY='b'", "NO_PROXY='b'", "b"},
			}, ""},
		{"here-document bodies are data",
			"cat > /etc/app.conf <<EOF\nhttp_proxy=http://in-body:1\nexport no_proxy=body\nEOF\n" +
				"cat <<-'END' >/tmp/x; export A=1\n\thttps_proxy=quoted-delimiter\n\tEND\n" +
				"cat <<\"X\" <<Y\nhttp_proxy=first\nX\nhttp_proxy=second\nY\nexport B=2\ngrep -q x <<<\"http_proxy=herestring\"\n", nil, []assign{
				{"A", "1", 5, "export", "cat <<-'END' >/tmp/x; export A=1", "A=1", "1"},
				{"B", "2", 13, "export", "export B=2", "B=2", "2"},
			}, ""},
		{"functions, case and if",
			"setproxy() {\n  export http_proxy=http://f:1\n}\ncase \"$(hostname)\" in\n  build*) export https_proxy=http://c:1 ;;\n  *) : ;;\nesac\nif [ -r /x ]; then export no_proxy=a; elif true; then export NO_PROXY=b; else export C=c; fi\n", nil, []assign{
				{"http_proxy", "http://f:1", 2, "export", "  export http_proxy=http://f:1", "http_proxy=http://f:1", "http://f:1"},
				{"https_proxy", "http://c:1", 5, "export", "  build*) export https_proxy=http://c:1 ;;", "https_proxy=http://c:1", "http://c:1"},
				{"no_proxy", "a", 8, "export", "if [ -r /x ]; then export no_proxy=a; elif true; then export NO_PROXY=b; else export C=c; fi", "no_proxy=a", "a"},
				{"NO_PROXY", "b", 8, "export", "if [ -r /x ]; then export no_proxy=a; elif true; then export NO_PROXY=b; else export C=c; fi", "NO_PROXY=b", "b"},
				{"C", "c", 8, "export", "if [ -r /x ]; then export no_proxy=a; elif true; then export NO_PROXY=b; else export C=c; fi", "C=c", "c"},
			}, ""},
		{"an unterminated here-document is an error, its body no assignment",
			"export A=1\ncat <<EOF\nhttp_proxy=x\n", nil, []assign{
				{"A", "1", 1, "export", "export A=1", "A=1", "1"},
			}, "line 2: unclosed here-document `EOF`"},
		{"a syntax error keeps what came before",
			"export http_proxy=http://p\nexport no_proxy=\"a\n", nil, []assign{
				{"http_proxy", "http://p", 1, "export", "export http_proxy=http://p", "http_proxy=http://p", "http://p"},
			}, "line 2: reached EOF without closing quote `\"`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := shellValues(t, []byte(tt.data), tt.inherited)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if (err == nil) != (tt.err == "") || (err != nil && err.Error() != tt.err) {
				t.Errorf("error = %v, want %q", err, tt.err)
			}
		})
	}
}

func TestParseSystemd(t *testing.T) {
	tests := []struct {
		name, data, section, key string
		want                     []assign
		errs                     []string
	}{
		{"Docker's documented drop-in", string(readTestdata(t, "http-proxy.conf")), "Service", "Environment", []assign{
			{"HTTP_PROXY", "http://user:secret@proxy:3128", 2, "Environment", `Environment="HTTP_PROXY=http://user:secret@proxy:3128"`, `"HTTP_PROXY=http://user:secret@proxy:3128"`, "http://user:secret@proxy:3128"},
			{"HTTPS_PROXY", "https://proxy.example.com:3129", 3, "Environment", `Environment="HTTPS_PROXY=https://proxy.example.com:3129"`, `"HTTPS_PROXY=https://proxy.example.com:3129"`, "https://proxy.example.com:3129"},
			{"NO_PROXY", "localhost,127.0.0.1,docker-registry.example.com,.corp", 4, "Environment", `Environment="NO_PROXY=localhost,127.0.0.1,docker-registry.example.com,.corp"`, `"NO_PROXY=localhost,127.0.0.1,docker-registry.example.com,.corp"`, "localhost,127.0.0.1,docker-registry.example.com,.corp"},
		}, nil},
		{"several words with a continuation", string(readTestdata(t, "containerd-proxy.conf")), "Service", "Environment", []assign{
			{"HTTP_PROXY", "http://proxy.corp.example:3128", 2, "Environment", "Environment=HTTP_PROXY=http://proxy.corp.example:3128 HTTPS_PROXY=http://proxy.corp.example:3128 \\\n    NO_PROXY=localhost,10.0.0.0/8", "HTTP_PROXY=http://proxy.corp.example:3128", "http://proxy.corp.example:3128"},
			{"HTTPS_PROXY", "http://proxy.corp.example:3128", 2, "Environment", "Environment=HTTP_PROXY=http://proxy.corp.example:3128 HTTPS_PROXY=http://proxy.corp.example:3128 \\\n    NO_PROXY=localhost,10.0.0.0/8", "HTTPS_PROXY=http://proxy.corp.example:3128", "http://proxy.corp.example:3128"},
			{"NO_PROXY", "localhost,10.0.0.0/8", 3, "Environment", "Environment=HTTP_PROXY=http://proxy.corp.example:3128 HTTPS_PROXY=http://proxy.corp.example:3128 \\\n    NO_PROXY=localhost,10.0.0.0/8", "NO_PROXY=localhost,10.0.0.0/8", "localhost,10.0.0.0/8"},
		}, nil},
		{"sections, comments, resets, escapes, specifiers, CRLF",
			"[Unit]\r\nEnvironment=http_proxy=unit-section\r\n[Service]\r\n# Environment=http_proxy=commented\r\n;Environment=x=1\r\nEnvironment=\r\nEnvironment=\"NO_PROXY=a\\x2cb\" no_proxy=100%%\r\nEnvironment=\"http_proxy=x\r\nEnvironment=bad-name=1 =2",
			"Service", "Environment", []assign{
				{"", "", 6, "Environment", "Environment=", "", ""},
				{"NO_PROXY", "a,b", 7, "Environment", `Environment="NO_PROXY=a\x2cb" no_proxy=100%%`, `"NO_PROXY=a\x2cb"`, `a\x2cb`},
				{"no_proxy", "100%", 7, "Environment", `Environment="NO_PROXY=a\x2cb" no_proxy=100%%`, "no_proxy=100%%", "100%%"},
			}, []string{"line 8: Environment= has an unbalanced quote; systemd ignores the assignment"}},
		{"system.conf as Debian ships it", string(readTestdata(t, "system.conf")), "Manager", "DefaultEnvironment", nil, nil},
		{"DefaultEnvironment drop-in", string(readTestdata(t, "proxy-defaults.conf")), "Manager", "DefaultEnvironment", []assign{
			{"http_proxy", "http://proxy.corp.example:3128", 3, "DefaultEnvironment", `DefaultEnvironment="http_proxy=http://proxy.corp.example:3128" "no_proxy=localhost,.corp.example"`, `"http_proxy=http://proxy.corp.example:3128"`, "http://proxy.corp.example:3128"},
			{"no_proxy", "localhost,.corp.example", 3, "DefaultEnvironment", `DefaultEnvironment="http_proxy=http://proxy.corp.example:3128" "no_proxy=localhost,.corp.example"`, `"no_proxy=localhost,.corp.example"`, "localhost,.corp.example"},
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.data)
			as, errs := ParseSystemd(data, tt.section, tt.key)
			if diff := cmp.Diff(tt.want, view(t, data, as)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			var gotErrs []string
			for _, e := range errs {
				gotErrs = append(gotErrs, e.Error())
			}
			if diff := cmp.Diff(tt.errs, gotErrs); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseDockerDaemon(t *testing.T) {
	data := readTestdata(t, "daemon.json")
	dp, err := ParseDockerDaemon(data)
	if err != nil {
		t.Fatal(err)
	}
	line := func(key, value string) string { return `    "` + key + `": "` + value + `",` }
	want := []assign{
		{"HTTP_PROXY", "http://proxy.example.com:3128", 7, "http-proxy", line("http-proxy", "http://proxy.example.com:3128"), `"http-proxy": "http://proxy.example.com:3128"`, "http://proxy.example.com:3128"},
		{"http_proxy", "http://proxy.example.com:3128", 7, "http-proxy", line("http-proxy", "http://proxy.example.com:3128"), `"http-proxy": "http://proxy.example.com:3128"`, "http://proxy.example.com:3128"},
		{"HTTPS_PROXY", "https://proxy.example.com:3129", 8, "https-proxy", line("https-proxy", "https://proxy.example.com:3129"), `"https-proxy": "https://proxy.example.com:3129"`, "https://proxy.example.com:3129"},
		{"https_proxy", "https://proxy.example.com:3129", 8, "https-proxy", line("https-proxy", "https://proxy.example.com:3129"), `"https-proxy": "https://proxy.example.com:3129"`, "https://proxy.example.com:3129"},
		{"NO_PROXY", "*.test.example.com,.example.org,127.0.0.0/8", 9, "no-proxy", strings.TrimSuffix(line("no-proxy", "*.test.example.com,.example.org,127.0.0.0/8"), ","), `"no-proxy": "*.test.example.com,.example.org,127.0.0.0/8"`, "*.test.example.com,.example.org,127.0.0.0/8"},
		{"no_proxy", "*.test.example.com,.example.org,127.0.0.0/8", 9, "no-proxy", strings.TrimSuffix(line("no-proxy", "*.test.example.com,.example.org,127.0.0.0/8"), ","), `"no-proxy": "*.test.example.com,.example.org,127.0.0.0/8"`, "*.test.example.com,.example.org,127.0.0.0/8"},
	}
	if diff := cmp.Diff(want, view(t, data, dp.Assignments)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if dp.Separator != "\n    " || dp.Colon != ": " || !dp.Present {
		t.Errorf("separator %q, colon %q, present %v; want %q, %q, true", dp.Separator, dp.Colon, dp.Present, "\n    ", ": ")
	}
	if got := string(data[dp.LastValueEnd-1 : dp.LastValueEnd+4]); got != "\"\n  }" {
		t.Errorf("LastValueEnd points before %q", got)
	}

	compact := []byte(`{"proxies":{"http-proxy":"http://p","no-proxy":""}}`)
	dp, err = ParseDockerDaemon(compact)
	if err != nil {
		t.Fatal(err)
	}
	if len(dp.Assignments) != 4 || dp.Separator != "" || dp.Colon != ":" || string(compact[dp.LastValueEnd:]) != "}}" {
		t.Errorf("compact: %d assignments, separator %q, colon %q, after last value %q", len(dp.Assignments), dp.Separator, dp.Colon, compact[dp.LastValueEnd:])
	}

	for in, want := range map[string]string{
		`{"proxies": []}`:                         `"proxies" is not an object`,
		`{"proxies": {"http-proxy": 3}}`:          `proxies.http-proxy is not a string`,
		`{"proxies": {}, "proxies": {}}`:          `"proxies" appears twice`,
		`{"debug": true`:                          `not JSON: unexpected end of file`,
		`{"debug": true} {}`:                      `not JSON: data after the top-level object`,
		`["proxies"]`:                             `not a JSON object`,
		`{"proxies": {"x": {"y": 1}, "no-proxy"}`: `not JSON: expected colon after object key`,
	} {
		if _, err := ParseDockerDaemon([]byte(in)); err == nil || err.Error() != want {
			t.Errorf("ParseDockerDaemon(%s) error = %v, want %q", in, err, want)
		}
	}
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/proxy/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func fuzzSeeds(f *testing.F) {
	for _, name := range []string{"proxy.sh", "http-proxy.conf", "containerd-proxy.conf", "proxy-defaults.conf", "environment.ubuntu", "daemon.json"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte("export a=\"$(x \"y\")\" b=${c:-'d'}\r\n"))
	f.Add([]byte("Environment=\"A=1\\\n B=2\" C=3\\"))
	f.Add([]byte("cat <<-'E' <<F; export a=1\r\n\tx=1\n\tE\ny=2\nF\nexport b=2\n"))
}

// BenchmarkParseShell parses the profile script from the field: what each profile.d
// script costs the proxy probe.
func BenchmarkParseShell(b *testing.B) {
	data := readTestdata(b, "proxy.sh")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseShell(data); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParseShell(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		as, _ := ParseShell(data)
		for _, a := range as {
			checkOffsets(t, data, a)
		}
	})
}

func FuzzParseSystemd(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, sk := range [][2]string{{"Service", "Environment"}, {"Manager", "DefaultEnvironment"}} {
			as, _ := ParseSystemd(data, sk[0], sk[1])
			for _, a := range as {
				checkOffsets(t, data, a)
			}
		}
	})
}

func FuzzParseEnvironment(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, a := range ParseEnvironment(data) {
			checkOffsets(t, data, a)
		}
	})
}

func FuzzParseDockerDaemon(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		dp, err := ParseDockerDaemon(data)
		if err != nil {
			return
		}
		for _, a := range dp.Assignments {
			checkOffsets(t, data, a)
			if data[a.ValueEnd] != '"' {
				t.Fatalf("%s: value end %d is not a closing quote", a.Name, a.ValueEnd)
			}
		}
		if dp.Present && (dp.LastValueEnd < dp.ObjectStart || dp.LastValueEnd > len(data)) {
			t.Fatalf("LastValueEnd %d outside the object starting at %d", dp.LastValueEnd, dp.ObjectStart)
		}
	})
}
