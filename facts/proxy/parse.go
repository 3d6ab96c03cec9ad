package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Formats of the files that set proxy variables.
const (
	FormatEnvironment = "environment" // pam_env's /etc/environment
	FormatShell       = "shell"       // /etc/profile.d/*.sh
	FormatSystemd     = "systemd"     // Environment= and DefaultEnvironment= of unit files and system.conf
	FormatDocker      = "docker"      // the proxies object of /etc/docker/daemon.json
)

// EnvAssignment is one variable assignment in a file, with the byte offsets an editor
// needs to change that value and nothing else.
type EnvAssignment struct {
	// Name is the variable; "" marks a systemd reset (`Environment=` with no value).
	Name string
	// Value is what the consumer sees. For shell files it is expanded in the file's scope
	// when the configuration is evaluated.
	Value string
	Line  int // 1-based
	// Directive is the systemd key (Environment, DefaultEnvironment), "export" for an
	// exported shell assignment, the JSON key for daemon.json.
	Directive string

	// Byte offsets into the file.
	LineStart, LineEnd int // the logical line holding the assignment, without its line ending
	WordStart, WordEnd int // the whole NAME=value word, quotes included
	NameStart          int
	ValueStart         int // first byte of the value's text, inside an opening quote
	ValueEnd           int // where text appended to the value goes: before a closing quote

	// Irregular marks a word whose name and value can't be told apart in the text
	// (quotes inside the name); NameStart and ValueStart then mean nothing.
	Irregular bool

	// Append marks a shell NAME+=value, which adds to the variable's value.
	Append bool

	parts []wordPart // shell: the value before expansion
}

// lineIndex maps byte offsets to line numbers.
type lineIndex []int // offsets of '\n'

func newLineIndex(data []byte) lineIndex {
	var idx lineIndex
	for i, b := range data {
		if b == '\n' {
			idx = append(idx, i)
		}
	}
	return idx
}

// line returns the 1-based line number of offset off.
func (idx lineIndex) line(off int) int { return sort.SearchInts(idx, off) + 1 }

// lineBounds returns the physical line around off, without its line ending ("\n" or "\r\n").
func lineBounds(data []byte, off int) (start, end int) {
	start = bytes.LastIndexByte(data[:off], '\n') + 1
	end = len(data)
	if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
		end = off + i
	}
	if end > start && data[end-1] == '\r' {
		end--
	}
	return start, end
}

// logicalLines splits data into lines joined by a trailing backslash (pam_env and systemd
// both continue lines that way), calling fn with each logical line's bounds.
func logicalLines(data []byte, fn func(start, end int)) {
	start := 0
	for start < len(data) {
		end := start
		for {
			_, e := lineBounds(data, end)
			nl := e
			for nl < len(data) && data[nl] != '\n' {
				nl++
			}
			if e > end && data[e-1] == '\\' && nl < len(data) {
				end = nl + 1
				continue
			}
			end = e
			fn(start, end)
			start = nl + 1
			break
		}
	}
}

// isName reports whether s is a shell/environment variable name.
func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// ParseEnvironment reads /etc/environment as pam_env does: KEY=VALUE lines, an optional
// "export " prefix, '#' starting a comment anywhere, a backslash continuing a line, and one
// pair of quotes around the value removed. Lines pam_env would skip are skipped.
func ParseEnvironment(data []byte) []EnvAssignment {
	var out []EnvAssignment
	idx := newLineIndex(data)
	logicalLines(data, func(start, end int) {
		i := start
		for i < end && (data[i] == ' ' || data[i] == '\t') {
			i++
		}
		if bytes.HasPrefix(data[i:end], []byte("export ")) {
			i += len("export ")
		}
		eq := bytes.IndexByte(data[i:end], '=')
		if eq <= 0 || !isName(string(data[i:i+eq])) {
			return
		}
		a := EnvAssignment{Name: string(data[i : i+eq]), Line: idx.line(i), LineStart: start, LineEnd: end,
			WordStart: i, NameStart: i, ValueStart: i + eq + 1}
		vend := a.ValueStart
		for vend < end && data[vend] != '#' {
			vend++
		}
		for vend > a.ValueStart && strings.IndexByte(" \t\r\n", data[vend-1]) >= 0 {
			vend--
		}
		a.WordEnd, a.ValueEnd = vend, vend
		raw := strings.NewReplacer("\\\r\n", "", "\\\n", "").Replace(string(data[a.ValueStart:vend]))
		if raw != "" && (raw[0] == '"' || raw[0] == '\'') {
			raw = raw[1:]
			a.ValueStart++
			if n := len(raw); n > 0 && (raw[n-1] == '"' || raw[n-1] == '\'') {
				raw = raw[:n-1]
				a.ValueEnd--
			}
		}
		a.Value = raw
		out = append(out, a)
	})
	return out
}

// ParseSystemd reads KEY= assignments in [section] of a unit file or system.conf, as
// systemd does: '#' and ';' comment lines, backslash continuations, and values split into
// words with quotes and C escapes removed. An empty assignment is a reset (Name ""). A
// value with an unbalanced quote is ignored as a whole, as systemd ignores it.
func ParseSystemd(data []byte, section, key string) ([]EnvAssignment, []error) {
	var out []EnvAssignment
	var errs []error
	idx := newLineIndex(data)
	current := ""
	logicalLines(data, func(start, end int) {
		i := start
		for i < end && strings.IndexByte(" \t", data[i]) >= 0 {
			i++
		}
		if i == end || data[i] == '#' || data[i] == ';' {
			return
		}
		if data[i] == '[' {
			if j := bytes.IndexByte(data[i:end], ']'); j > 0 {
				current = string(data[i+1 : i+j])
			}
			return
		}
		if current != section {
			return
		}
		eq := bytes.IndexByte(data[i:end], '=')
		if eq < 0 || strings.TrimSpace(string(data[i:i+eq])) != key {
			return
		}
		words, err := systemdWords(data, i+eq+1, end)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %s= %w; systemd ignores the assignment", idx.line(i), key, err))
			return
		}
		if len(words) == 0 {
			out = append(out, EnvAssignment{Line: idx.line(i), Directive: key, LineStart: start, LineEnd: end})
			return
		}
		for _, w := range words {
			name, value, ok := strings.Cut(w.text, "=")
			if !ok || !isName(name) {
				continue
			}
			if key == "Environment" {
				// Unit files expand specifiers; "%%" is the only one a no_proxy list uses.
				value = strings.ReplaceAll(value, "%%", "%")
			}
			a := EnvAssignment{Name: name, Value: value, Line: idx.line(w.start), Directive: key,
				LineStart: start, LineEnd: end, WordStart: w.start, WordEnd: w.end, ValueEnd: w.end}
			a.NameStart = w.start
			if data[w.start] == '"' || data[w.start] == '\'' {
				a.NameStart++
			}
			a.ValueStart = a.NameStart + len(name) + 1
			if w.closingQuote {
				a.ValueEnd--
			}
			if a.ValueStart > a.ValueEnd || string(data[a.NameStart:a.ValueStart]) != name+"=" {
				// Quotes inside the name ("A"=x): the value can't be edited in place.
				a.Irregular = true
				a.NameStart, a.ValueStart, a.ValueEnd = w.start, w.end, w.end
			}
			out = append(out, a)
		}
	})
	return out, errs
}

type systemdWord struct {
	text         string
	start, end   int
	closingQuote bool
}

// systemdWords splits data[from:to] like systemd's extract_first_word with
// EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE; a continuation (backslash, line ending) is a blank.
func systemdWords(data []byte, from, to int) ([]systemdWord, error) {
	var words []systemdWord
	i := from
	for {
		for i < to && isSystemdBlank(data, i) {
			i += systemdBlankLen(data, i)
		}
		if i >= to {
			return words, nil
		}
		w := systemdWord{start: i}
		var b strings.Builder
		var quote byte
		for i < to {
			c := data[i]
			if quote == 0 && isSystemdBlank(data, i) {
				break
			}
			w.closingQuote = false
			switch {
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
				i++
			case quote != 0 && c == quote:
				quote = 0
				w.closingQuote = true
				i++
			case c == '\\' && i+1 < to && data[i+1] != '\n' && data[i+1] != '\r':
				n, r := cUnescape(data[i:to])
				b.WriteString(r)
				i += n
			case c == '\\':
				// A continuation inside quotes joins the lines with a blank; a lone
				// backslash at the very end escapes nothing, and systemd rejects it.
				n := systemdBlankLen(data, i)
				if n == 0 {
					return nil, errors.New("ends in a lone backslash")
				}
				i += n
				b.WriteByte(' ')
			default:
				b.WriteByte(c)
				i++
			}
		}
		if quote != 0 {
			return nil, errors.New("has an unbalanced quote")
		}
		w.text, w.end = b.String(), i
		words = append(words, w)
	}
}

func isSystemdBlank(data []byte, i int) bool { return systemdBlankLen(data, i) > 0 }

// systemdBlankLen is the length of the blank at i: a space, a tab, or a continuation.
func systemdBlankLen(data []byte, i int) int {
	switch {
	case data[i] == ' ' || data[i] == '\t':
		return 1
	case data[i] == '\\' && i+1 < len(data) && data[i+1] == '\n':
		return 2
	case data[i] == '\\' && i+2 < len(data) && data[i+1] == '\r' && data[i+2] == '\n':
		return 3
	case data[i] == '\n' || data[i] == '\r':
		return 1
	}
	return 0
}

var cEscapes = map[byte]string{'a': "\a", 'b': "\b", 'f': "\f", 'n': "\n", 'r': "\r", 't': "\t", 'v': "\v", 's': " ", '\\': "\\", '"': "\"", '\'': "'"}

// cUnescape decodes the C escape at the start of s (which begins with a backslash),
// returning the bytes consumed and the decoded text. Unknown escapes keep the character.
func cUnescape(s []byte) (int, string) {
	if len(s) < 2 {
		return len(s), string(s)
	}
	if r, ok := cEscapes[s[1]]; ok {
		return 2, r
	}
	if s[1] == 'x' && len(s) >= 4 && isHex(s[2]) && isHex(s[3]) {
		return 4, string([]byte{unhex(s[2])<<4 | unhex(s[3])})
	}
	if len(s) >= 4 && isOctal(s[1]) && isOctal(s[2]) && isOctal(s[3]) {
		return 4, string([]byte{(s[1]-'0')<<6 | (s[2]-'0')<<3 | (s[3] - '0')})
	}
	return 2, string(s[1:2])
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
func isOctal(c byte) bool { return c >= '0' && c <= '7' }
func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// Keys of daemon.json's proxies object and the variables dockerd sets from them (both
// spellings, see configureProxyEnv in moby's cmd/dockerd).
var dockerProxyKeys = map[string][2]string{
	"http-proxy":  {EnvHTTPProxyUC, EnvHTTPProxy},
	"https-proxy": {EnvHTTPSProxyUC, EnvHTTPSProxy},
	"no-proxy":    {EnvNoProxyUC, EnvNoProxy},
}

// DockerProxies is what ParseDockerDaemon found in daemon.json.
type DockerProxies struct {
	Assignments []EnvAssignment
	// Present is set when the file has a proxies object.
	Present bool
	// ObjectStart is the offset just after the proxies object's '{'; LastValueEnd the offset
	// after its last member's value (equal to ObjectStart when it is empty).
	ObjectStart, LastValueEnd int
	// Separator is the text between a ',' and the next member (newline and indent), and
	// Colon the text from a key's closing quote to its value, both copied from the file.
	Separator, Colon string
}

// ParseDockerDaemon reads the proxies object of daemon.json with the offsets of each
// member. Each member stands for both spellings of its variable, which dockerd sets when
// the value is not empty.
func ParseDockerDaemon(data []byte) (DockerProxies, error) {
	var dp DockerProxies
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return dp, notJSON(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return dp, errors.New("not a JSON object")
	}
	idx := newLineIndex(data)
	for dec.More() {
		keyTok, err := dec.Token()
		if err != nil {
			return dp, notJSON(err)
		}
		if keyTok != "proxies" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return dp, notJSON(err)
			}
			continue
		}
		if dp.Present {
			return dp, errors.New(`"proxies" appears twice`)
		}
		dp.Present = true
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return dp, errors.New(`"proxies" is not an object`)
		}
		if err := dp.readProxies(dec, data, idx); err != nil {
			return dp, err
		}
		if _, err := dec.Token(); err != nil {
			return dp, notJSON(err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return dp, notJSON(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return dp, errors.New("not JSON: data after the top-level object")
	}
	return dp, nil
}

// readProxies reads the members of the proxies object, whose '{' dec has just read, with
// their offsets in data, up to (not including) its '}'.
func (dp *DockerProxies) readProxies(dec *json.Decoder, data []byte, idx lineIndex) error {
	dp.ObjectStart = int(dec.InputOffset())
	dp.LastValueEnd = dp.ObjectStart
	// The end of the previous token, taken before More() skips the blanks after it.
	prevEnd := dp.ObjectStart
	for dec.More() {
		keyTok, err := dec.Token()
		if err != nil {
			return notJSON(err)
		}
		keyEnd := int(dec.InputOffset())
		keyStart := skipJSONSpace(data, prevEnd)
		sep := string(data[prevEnd:keyStart])
		if prevEnd != dp.ObjectStart {
			sep = strings.Replace(sep, ",", "", 1)
		}
		dp.Separator = sep
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return notJSON(err)
		}
		valEnd := int(dec.InputOffset())
		prevEnd = valEnd
		valStart := skipJSONSpace(data, keyEnd)
		dp.Colon = string(data[keyEnd:valStart])
		dp.LastValueEnd = valEnd
		key, _ := keyTok.(string)
		names, known := dockerProxyKeys[key]
		if !known {
			continue
		}
		var value string
		if err := json.Unmarshal(raw, &value); err != nil {
			return fmt.Errorf("proxies.%s is not a string", key)
		}
		ls, le := lineBounds(data, keyStart)
		for _, n := range names {
			dp.Assignments = append(dp.Assignments, EnvAssignment{Name: n, Value: value, Line: idx.line(keyStart), Directive: key,
				LineStart: ls, LineEnd: le, WordStart: keyStart, NameStart: keyStart + 1, WordEnd: valEnd,
				ValueStart: valStart + 1, ValueEnd: valEnd - 1})
		}
	}
	return nil
}

func notJSON(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("not JSON: unexpected end of file")
	}
	return fmt.Errorf("not JSON: %w", err)
}

// skipJSONSpace skips blanks and the separators ',' and ':' that json.Decoder consumes
// between tokens.
func skipJSONSpace(data []byte, i int) int {
	for i < len(data) && strings.IndexByte(" \t\r\n,:", data[i]) >= 0 {
		i++
	}
	return i
}
