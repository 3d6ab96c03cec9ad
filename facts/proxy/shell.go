package proxy

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/syntax"
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

// ParseShell finds the variable assignments of a shell script sourced by /etc/profile:
// `export NAME=value …`, and `NAME=value` commands without a command word, wherever they
// stand: in function bodies, case branches and if blocks alike, since nothing is run.
// Here-document bodies are data, and a command substitution runs in a subshell: neither
// assigns. A syntax error ends the scan; the assignments of the commands before it are
// returned with the error.
func ParseShell(data []byte) ([]EnvAssignment, error) {
	// The parser drops NUL bytes, which would shift the offsets after one: no shell
	// script holds one.
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return nil, fmt.Errorf("line %d: a NUL byte; not a shell script", bytes.Count(data[:i], []byte("\n"))+1)
	}
	var out []EnvAssignment
	parser := syntax.NewParser(syntax.Variant(syntax.LangBash), syntax.KeepComments(false))
	var err error
	// Every statement and error is taken, never breaking out: on some input the parser
	// yields again after a break (a panic in the range-over-func machinery).
	for stmt, serr := range parser.StmtsSeq(bytes.NewReader(data)) {
		if serr != nil || err != nil {
			err = cmp.Or(err, serr)
			continue
		}
		syntax.Walk(stmt, func(node syntax.Node) bool {
			switch n := node.(type) {
			case *syntax.CmdSubst, *syntax.ProcSubst:
				return false
			case *syntax.CallExpr:
				if len(n.Args) == 0 { // NAME=value cmd: the command's environment only
					out = appendAssigns(out, data, "", n.Assigns)
				}
			case *syntax.DeclClause:
				if n.Variant.Value == "export" {
					out = appendAssigns(out, data, "export", n.Args)
				}
			}
			return true
		})
	}
	var perr syntax.ParseError
	if errors.As(err, &perr) {
		return out, fmt.Errorf("line %d: %s", perr.Pos.Line(), perr.Text)
	}
	return out, err
}

// appendAssigns adds the plain NAME=value and NAME+=value assignments of a command.
func appendAssigns(out []EnvAssignment, data []byte, directive string, assigns []*syntax.Assign) []EnvAssignment {
	for _, as := range assigns {
		if as.Naked || as.Name == nil || as.Index != nil || as.Array != nil {
			continue
		}
		start, end := int(as.Pos().Offset()), int(as.End().Offset())
		var parts []syntax.WordPart
		if as.Value != nil {
			parts = as.Value.Parts
		}
		// A \r before the newline is taken as part of the line ending, as the files' other
		// readers do; bash would keep it in the value.
		if end > start && data[end-1] == '\r' {
			end--
			if lit, ok := parts[len(parts)-1].(*syntax.Lit); ok {
				parts = slices.Clone(parts)
				if v := strings.TrimSuffix(lit.Value, "\r"); v != "" {
					parts[len(parts)-1] = &syntax.Lit{ValuePos: lit.ValuePos, ValueEnd: lit.ValueEnd, Value: v}
				} else {
					parts = parts[:len(parts)-1]
				}
			}
		}
		a := EnvAssignment{Name: as.Name.Value, Line: int(as.Pos().Line()), Directive: directive,
			WordStart: start, WordEnd: end, NameStart: start, ValueStart: end, ValueEnd: end, Append: as.Append}
		// A line continuation inside the name (A\<newline>B=) leaves no offsets to edit by.
		a.Irregular = !bytes.HasPrefix(data[start:], []byte(a.Name))
		a.LineStart, _ = lineBounds(data, start)
		a.LineEnd = logicalLineEnd(data, end)
		if len(parts) > 0 {
			a.ValueStart, a.parts = int(parts[0].Pos().Offset()), wordParts(parts, false)
			// Appended text goes inside the outer quotes: "…" or '…'.
			if quoted(parts[len(parts)-1]) {
				a.ValueEnd--
			}
			if quoted(parts[0]) && a.ValueStart < a.ValueEnd {
				a.ValueStart++
			}
		}
		out = append(out, a)
	}
	return out
}

// quoted reports whether p is '…' or "…" (not $'…' or $"…").
func quoted(p syntax.WordPart) bool {
	switch q := p.(type) {
	case *syntax.SglQuoted:
		return !q.Dollar
	case *syntax.DblQuoted:
		return !q.Dollar
	}
	return false
}

// wordParts turns a word's parts into literal text and the expansions imdsmend evaluates;
// anything else (command and arithmetic substitutions, ${#x}, ${x/a/b} …) is unknown and
// expands to nothing.
func wordParts(parts []syntax.WordPart, inDouble bool) []wordPart {
	var out []wordPart
	for _, p := range parts {
		switch p := p.(type) {
		case *syntax.Lit:
			out = addLit(out, unescape(p.Value, inDouble))
		case *syntax.SglQuoted:
			out = addLit(out, p.Value)
		case *syntax.DblQuoted:
			for _, q := range wordParts(p.Parts, true) {
				if q.param == "" && !q.cmdsub {
					out = addLit(out, q.lit)
				} else {
					out = append(out, q)
				}
			}
		case *syntax.ParamExp:
			out = append(out, paramPart(p))
		default:
			out = append(out, wordPart{cmdsub: true})
		}
	}
	return out
}

// paramPart is $NAME, ${NAME} or ${NAME<op>word}; other forms are unknown ("$?").
func paramPart(p *syntax.ParamExp) wordPart {
	if p.Param == nil || p.Excl || p.Length || p.Width || p.Index != nil || p.Slice != nil || p.Repl != nil || p.Names != 0 {
		return wordPart{param: "$?"}
	}
	w := wordPart{param: p.Param.Value}
	if !isName(w.param) {
		w.param = "$" + w.param // positional or special: unknown
	}
	if p.Exp == nil {
		return w
	}
	op, ok := paramOps[p.Exp.Op]
	if !ok {
		return wordPart{param: "$?"} // ${x#pat} and friends: not modelled
	}
	w.op = op
	if p.Exp.Word != nil {
		w.word = wordParts(p.Exp.Word.Parts, false)
	}
	return w
}

var paramOps = map[syntax.ParExpOperator]string{
	syntax.DefaultUnset: "-", syntax.DefaultUnsetOrNull: ":-", syntax.AlternateUnset: "+", syntax.AlternateUnsetOrNull: ":+",
	syntax.AssignUnset: "=", syntax.AssignUnsetOrNull: ":=", syntax.ErrorUnset: "?", syntax.ErrorUnsetOrNull: ":?",
}

// unescape removes the shell's backslashes from literal text as written: outside quotes
// a backslash keeps the next byte and a backslash-newline joins lines; inside double
// quotes only \$ \` \" \\ and backslash-newline are escapes.
func unescape(s string, inDouble bool) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		next := s[i+1]
		switch {
		case next == '\n':
		case !inDouble || strings.IndexByte("$`\"\\", next) >= 0:
			b.WriteByte(next)
		default:
			b.WriteByte('\\')
			b.WriteByte(next)
		}
		i++
	}
	return b.String()
}

// addLit appends literal text to parts, joining it to a literal part at the end.
func addLit(parts []wordPart, s string) []wordPart {
	if n := len(parts); n > 0 && parts[n-1].param == "" && !parts[n-1].cmdsub {
		parts[n-1].lit += s
		return parts
	}
	return append(parts, wordPart{lit: s})
}

// logicalLineEnd is the end of the line holding off, following backslash continuations,
// without the line ending: where a new line can go after the command at off.
func logicalLineEnd(data []byte, off int) int {
	for {
		_, end := lineBounds(data, off)
		next := end + 1 // past the line ending
		if end < len(data) && data[end] == '\r' {
			next++
		}
		if next > len(data) || !endsInContinuation(data[:end]) {
			return end
		}
		off = next
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
