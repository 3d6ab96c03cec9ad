package facts

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// wordPart is one piece of a shell word's value: literal text, a parameter expansion
// ($NAME, ${NAME}, ${NAME:-word} …) or a command substitution, whose output is unknown.
type wordPart struct {
	lit    string
	param  string     // name to expand; "" for a literal
	op     string     // "", "-", ":-", "+", ":+", "=", ":=", "?", ":?"
	word   []wordPart // the word after op
	cmdsub bool
}

// expand evaluates parts against env. A command substitution expands to nothing: its
// output can't be known without running it.
func expand(parts []wordPart, env map[string]string) string {
	var b strings.Builder
	for _, p := range parts {
		switch {
		case p.cmdsub:
		case p.param == "":
			b.WriteString(p.lit)
		default:
			v, set := env[p.param]
			switch p.op {
			case "-", "=":
				if !set {
					v = expand(p.word, env)
				}
			case ":-", ":=":
				if v == "" {
					v = expand(p.word, env)
				}
			case "+":
				v = ""
				if set {
					v = expand(p.word, env)
				}
			case ":+":
				if v != "" {
					v = expand(p.word, env)
				}
			}
			b.WriteString(v)
		}
	}
	return b.String()
}

// syntaxError is a script the shell would refuse, at the offset of the construct.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return e.msg }

// shellWord is a word of a shell command with its byte span.
type shellWord struct {
	start, end   int
	parts        []wordPart
	literal      string // the word's text when it has no quotes or expansions
	closingQuote bool   // the word ends with a closing ' or "
	// Assignment words (NAME=value, NAME+=value):
	name       string
	valueStart int
	appendOp   bool
}

// shellLexer splits a shell script into commands. It knows quoting, escapes, comments,
// line continuations, parameter expansions, command substitutions and here-documents; it
// does not run anything, so control flow is ignored and every assignment counts, in
// function bodies, case branches and if blocks alike.
type shellLexer struct {
	data []byte
	i    int
	// heredocs are the here-documents opened on the current line: their bodies start
	// after its newline.
	heredocs []heredoc
}

// heredoc is a here-document's end: the line that closes it, and whether leading tabs
// are stripped (<<-).
type heredoc struct {
	delim     string
	stripTabs bool
}

// ParseShell finds the variable assignments of a shell script sourced by /etc/profile:
// `export NAME=value …`, and `NAME=value` commands without a command word. A syntax error
// ends the scan; the assignments before it are returned with the error.
func ParseShell(data []byte) ([]EnvAssignment, error) {
	lx := &shellLexer{data: data}
	idx := newLineIndex(data)
	var out []EnvAssignment
	for {
		words, more, err := lx.command()
		if err != nil {
			var se *syntaxError
			if errors.As(err, &se) {
				return out, fmt.Errorf("line %d: %s", idx.line(se.off), se.msg)
			}
			return out, err
		}
		out = append(out, assignments(data, idx, words)...)
		if !more {
			return out, nil
		}
	}
}

// assignments turns one command's words into assignments, if the command assigns.
func assignments(data []byte, idx lineIndex, words []shellWord) []EnvAssignment {
	// Reserved words that may precede a command on the same line.
	for len(words) > 0 && (words[0].literal == "then" || words[0].literal == "else" || words[0].literal == "do" || words[0].literal == "{") {
		words = words[1:]
	}
	if len(words) == 0 {
		return nil
	}
	directive := ""
	if words[0].literal == "export" {
		directive = "export"
		words = words[1:]
	} else {
		for _, w := range words {
			if w.name == "" {
				// NAME=value cmd: the assignments are the command's environment only.
				return nil
			}
		}
	}
	var out []EnvAssignment
	for _, w := range words {
		if w.name == "" {
			continue
		}
		ls, _ := lineBounds(data, w.start)
		le := logicalLineEnd(data, w.end)
		out = append(out, EnvAssignment{Name: w.name, Line: idx.line(w.start), Directive: directive,
			LineStart: ls, LineEnd: le, WordStart: w.start, WordEnd: w.end, NameStart: w.start,
			ValueStart: w.valueStart, ValueEnd: w.end, parts: w.parts, Append: w.appendOp})
		if a := &out[len(out)-1]; w.closingQuote && a.ValueStart < a.ValueEnd {
			// Inside the outer quotes: "…" or '…'.
			a.ValueEnd--
			if q := data[a.ValueStart]; (q == '"' || q == '\'') && a.ValueStart < a.ValueEnd {
				a.ValueStart++
			}
		}
	}
	return out
}

// logicalLineEnd is the end of the line holding off, following backslash continuations,
// without the line ending: where a new line can go after the command at off.
func logicalLineEnd(data []byte, off int) int {
	for {
		_, end := lineBounds(data, off)
		if end == len(data) || !endsInContinuation(data[:end]) {
			return end
		}
		off = end + 1
		if data[end] == '\r' {
			off++
		}
	}
}

// endsInContinuation reports whether line ends in an unescaped backslash.
func endsInContinuation(line []byte) bool {
	n := 0
	for i := len(line) - 1; i >= 0 && line[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// command reads words up to the next command separator. more is false at the end.
func (lx *shellLexer) command() (words []shellWord, more bool, err error) {
	for {
		lx.skipBlanks()
		if lx.i >= len(lx.data) {
			return words, false, nil
		}
		c := lx.data[lx.i]
		switch {
		case c == '#':
			for lx.i < len(lx.data) && lx.data[lx.i] != '\n' {
				lx.i++
			}
		case c == '<' && strings.HasPrefix(string(lx.data[lx.i:min(lx.i+3, len(lx.data))]), "<<") && !strings.HasPrefix(string(lx.data[lx.i:min(lx.i+3, len(lx.data))]), "<<<"):
			return words, true, lx.heredocStart()
		case c == '\n' || c == ';' || c == '&' || c == '|' || c == '(' || c == ')' || c == '<' || c == '>':
			lx.i++
			if c == '\n' {
				lx.skipHeredocBodies()
			}
			return words, true, nil
		case c == '\r' && lx.i+1 < len(lx.data) && lx.data[lx.i+1] == '\n':
			lx.i += 2
			lx.skipHeredocBodies()
			return words, true, nil
		default:
			w, err := lx.word()
			if err != nil {
				return words, false, err
			}
			words = append(words, w)
		}
	}
}

// heredocStart reads the operator (<< or <<-) and the delimiter word of a here-document
// at lx.i. Its body is data, never commands: it is skipped at the end of the line.
func (lx *shellLexer) heredocStart() error {
	lx.i += 2
	h := heredoc{}
	if lx.i < len(lx.data) && lx.data[lx.i] == '-' {
		h.stripTabs = true
		lx.i++
	}
	lx.skipBlanks()
	if lx.i >= len(lx.data) || isWordEnd(lx.data[lx.i]) {
		return &syntaxError{lx.i, "here-document without a delimiter"}
	}
	w, err := lx.word()
	if err != nil {
		return err
	}
	// The delimiter is the word with its quotes removed, never expanded.
	for _, p := range w.parts {
		if p.param == "" && !p.cmdsub {
			h.delim += p.lit
		}
	}
	lx.heredocs = append(lx.heredocs, h)
	return nil
}

// skipHeredocBodies skips the bodies of the here-documents opened on the line that just
// ended (lx.i is at the start of the next), each up to the line holding its delimiter;
// one without that line runs to the end of the script, as in sh.
func (lx *shellLexer) skipHeredocBodies() {
	for _, h := range lx.heredocs {
		for lx.i < len(lx.data) {
			_, end := lineBounds(lx.data, lx.i) // without the line ending
			line := string(lx.data[lx.i:end])
			if h.stripTabs {
				line = strings.TrimLeft(line, "\t")
			}
			lx.i = len(lx.data)
			if nl := bytes.IndexByte(lx.data[end:], '\n'); nl >= 0 {
				lx.i = end + nl + 1
			}
			if line == h.delim {
				break
			}
		}
	}
	lx.heredocs = lx.heredocs[:0]
}

// skipBlanks skips spaces, tabs and line continuations.
func (lx *shellLexer) skipBlanks() {
	for lx.i < len(lx.data) {
		switch {
		case lx.data[lx.i] == ' ' || lx.data[lx.i] == '\t':
			lx.i++
		case lx.continuation(lx.i) > 0:
			lx.i += lx.continuation(lx.i)
		default:
			return
		}
	}
}

// continuation is the length of a backslash-newline at i, 0 if there is none.
func (lx *shellLexer) continuation(i int) int {
	d := lx.data
	if i+1 < len(d) && d[i] == '\\' && d[i+1] == '\n' {
		return 2
	}
	if i+2 < len(d) && d[i] == '\\' && d[i+1] == '\r' && d[i+2] == '\n' {
		return 3
	}
	return 0
}

func isWordEnd(c byte) bool { return strings.IndexByte(" \t\n;&|()<>", c) >= 0 }

// word reads one word starting at lx.i.
func (lx *shellLexer) word() (shellWord, error) {
	w := shellWord{start: lx.i}
	// NAME= or NAME+= at the start of the word makes it an assignment.
	j := lx.i
	for j < len(lx.data) && (lx.data[j] == '_' || isAlnum(lx.data[j])) {
		j++
	}
	if name := string(lx.data[lx.i:j]); isName(name) {
		switch {
		case j < len(lx.data) && lx.data[j] == '=':
			w.name, w.valueStart, lx.i = name, j+1, j+1
		case j+1 < len(lx.data) && lx.data[j] == '+' && lx.data[j+1] == '=':
			w.name, w.valueStart, w.appendOp, lx.i = name, j+2, true, j+2
		}
	}
	plain := true
	for lx.i < len(lx.data) {
		c := lx.data[lx.i]
		if c == '\r' && lx.i+1 < len(lx.data) && lx.data[lx.i+1] == '\n' {
			break
		}
		if isWordEnd(c) {
			break
		}
		w.closingQuote = false
		switch c {
		case '\\':
			if n := lx.continuation(lx.i); n > 0 {
				lx.i += n
				continue
			}
			plain = false
			if lx.i+1 < len(lx.data) {
				w.parts = addLit(w.parts, string(lx.data[lx.i+1]))
			}
			lx.i = min(lx.i+2, len(lx.data))
		case '\'':
			plain = false
			end := strings.IndexByte(string(lx.data[lx.i+1:]), '\'')
			if end < 0 {
				return w, &syntaxError{lx.i, "unterminated ' quote"}
			}
			w.parts = addLit(w.parts, string(lx.data[lx.i+1:lx.i+1+end]))
			lx.i += end + 2
			w.closingQuote = true
		case '"':
			plain = false
			lx.i++
			if err := lx.doubleQuoted(&w.parts); err != nil {
				return w, err
			}
			w.closingQuote = true
		case '$', '`':
			plain = false
			if err := lx.expansion(&w.parts, false); err != nil {
				return w, err
			}
		default:
			w.parts = addLit(w.parts, string(c))
			lx.i++
		}
	}
	w.end = lx.i
	if plain && w.name == "" && len(w.parts) == 1 {
		w.literal = w.parts[0].lit // plain text is one literal part
	}
	return w, nil
}

// addLit appends literal text to parts, joining it to a literal part at the end.
func addLit(parts []wordPart, s string) []wordPart {
	if n := len(parts); n > 0 && parts[n-1].param == "" && !parts[n-1].cmdsub {
		parts[n-1].lit += s
		return parts
	}
	return append(parts, wordPart{lit: s})
}

// expansion reads the expansion at lx.i ('$' or '`') into parts; one that turns out to be
// literal text ("$" alone, $'…') joins the text around it.
func (lx *shellLexer) expansion(parts *[]wordPart, quoted bool) error {
	p, err := lx.dollar(quoted)
	if err != nil {
		return err
	}
	if p.param == "" && !p.cmdsub {
		*parts = addLit(*parts, p.lit)
	} else {
		*parts = append(*parts, p)
	}
	return nil
}

func isAlnum(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// doubleQuoted reads up to the closing '"' into parts (lx.i is just after the opening one).
func (lx *shellLexer) doubleQuoted(parts *[]wordPart) error {
	open := lx.i - 1
	for lx.i < len(lx.data) {
		c := lx.data[lx.i]
		switch c {
		case '"':
			lx.i++
			return nil
		case '\\':
			if n := lx.continuation(lx.i); n > 0 {
				lx.i += n
				continue
			}
			if lx.i+1 < len(lx.data) && strings.IndexByte("$`\"\\", lx.data[lx.i+1]) >= 0 {
				*parts = addLit(*parts, string(lx.data[lx.i+1]))
				lx.i += 2
				continue
			}
			*parts = addLit(*parts, "\\")
			lx.i++
		case '$', '`':
			if err := lx.expansion(parts, true); err != nil {
				return err
			}
		default:
			*parts = addLit(*parts, string(c))
			lx.i++
		}
	}
	return &syntaxError{open, "unterminated \" quote"}
}

// dollar reads an expansion starting at lx.i ('$' or '`').
func (lx *shellLexer) dollar(quoted bool) (wordPart, error) {
	d := lx.data
	if d[lx.i] == '`' {
		end := lx.i + 1
		for end < len(d) && d[end] != '`' {
			if d[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(d) {
			return wordPart{}, &syntaxError{lx.i, "unterminated ` command substitution"}
		}
		lx.i = end + 1
		return wordPart{cmdsub: true}, nil
	}
	lx.i++ // '$'
	if lx.i >= len(d) {
		return wordPart{lit: "$"}, nil
	}
	switch c := d[lx.i]; {
	case c == '(':
		return wordPart{cmdsub: true}, lx.skipParens()
	case c == '{':
		return lx.braced()
	case c == '\'' && !quoted:
		// $'…' (ANSI-C quoting): keep the text, escapes and all.
		end := strings.IndexByte(string(d[lx.i+1:]), '\'')
		if end < 0 {
			return wordPart{}, &syntaxError{lx.i - 1, "unterminated $' quote"}
		}
		s := string(d[lx.i+1 : lx.i+1+end])
		lx.i += end + 2
		return wordPart{lit: s}, nil
	case c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
		j := lx.i
		for j < len(d) && (d[j] == '_' || isAlnum(d[j])) {
			j++
		}
		name := string(d[lx.i:j])
		lx.i = j
		return wordPart{param: name}, nil
	case strings.IndexByte("0123456789@*#?$!-", c) >= 0:
		lx.i++
		return wordPart{param: "$" + string(c)}, nil
	}
	return wordPart{lit: "$"}, nil
}

// skipParens skips $( … ) or $(( … )) including nested parentheses and quotes.
func (lx *shellLexer) skipParens() error {
	d := lx.data
	open := lx.i - 1
	depth := 0
	for lx.i < len(d) {
		switch d[lx.i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				lx.i++
				return nil
			}
		case '\\':
			lx.i++
		case '\'', '"':
			q := d[lx.i]
			lx.i++
			for lx.i < len(d) && d[lx.i] != q {
				if q == '"' && d[lx.i] == '\\' {
					lx.i++
				}
				lx.i++
			}
		}
		lx.i++
	}
	return &syntaxError{open, "unterminated $( command substitution"}
}

// braced reads ${NAME}, ${NAME<op>word} and the other ${…} forms (lx.i is at '{').
func (lx *shellLexer) braced() (wordPart, error) {
	d := lx.data
	open := lx.i - 1
	lx.i++
	j := lx.i
	for j < len(d) && (d[j] == '_' || isAlnum(d[j])) {
		j++
	}
	p := wordPart{param: string(d[lx.i:j])}
	if !isName(p.param) {
		p.param = "$" + p.param // positional, or an unsupported form: unknown
	}
	lx.i = j
	for _, op := range []string{":-", ":=", ":+", ":?", "-", "=", "+", "?"} {
		if strings.HasPrefix(string(d[lx.i:min(lx.i+2, len(d))]), op) {
			p.op = op
			lx.i += len(op)
			break
		}
	}
	// The word after the operator, up to the matching '}', with quotes and expansions.
	var word []wordPart
	for lx.i < len(d) {
		c := d[lx.i]
		switch {
		case c == '}':
			lx.i++
			if p.op == "" {
				// ${#NAME}, ${NAME%pat} and friends: not modelled, value unknown.
				if len(word) > 0 {
					p.param = "$?"
				}
			} else {
				p.word = word
			}
			return p, nil
		case c == '"':
			lx.i++
			if err := lx.doubleQuoted(&word); err != nil {
				return p, err
			}
		case c == '\'':
			end := strings.IndexByte(string(d[lx.i+1:]), '\'')
			if end < 0 {
				return p, &syntaxError{lx.i, "unterminated ' quote"}
			}
			word = addLit(word, string(d[lx.i+1:lx.i+1+end]))
			lx.i += end + 2
		case c == '\\' && lx.i+1 < len(d):
			word = addLit(word, string(d[lx.i+1]))
			lx.i += 2
		case c == '$' || c == '`':
			if err := lx.expansion(&word, true); err != nil {
				return p, err
			}
		default:
			word = addLit(word, string(c))
			lx.i++
		}
	}
	return p, &syntaxError{open, "unterminated ${"}
}
