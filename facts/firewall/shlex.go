package firewall

import (
	"errors"
	"strings"
)

// SplitWords splits a line into words the way a POSIX shell would: blanks separate words,
// single quotes keep everything literally, double quotes keep everything but let a
// backslash escape `"`, `\`, `$` and a backquote, and a backslash outside quotes escapes
// any character. Unlike a shell, a backslash also escapes `'` inside double quotes, as
// iptables writes a comment "don't": "don\'t". iptables-save quotes `--comment "a b"` and
// escapes `\"` inside, so rule text must never be split on spaces. Unlike ParseShell
// (shell scripts with expansions and command separators), nothing here is special but
// quotes and backslashes: `$`, `;` and `|` in a comment are just text.
func SplitWords(s string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !inWord && !isBlank(c) {
			// Most words are plain: take them as they are, without copying.
			end := i
			for end < len(s) && !isBlank(s[end]) && strings.IndexByte(`\'"`, s[end]) < 0 {
				end++
			}
			if end == len(s) || isBlank(s[end]) {
				words = append(words, s[i:end])
				i = end
				continue
			}
		}
		switch {
		case isBlank(c):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("line ends in a lone backslash")
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`'", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated double quote")
			}
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// QuoteWords joins words into one line that SplitWords (and a shell) reads back as the
// same words; plain words stay unquoted so commands read naturally.
func QuoteWords(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = quoteWord(w)
	}
	return strings.Join(quoted, " ")
}

func quoteWord(w string) string {
	if w == "" {
		return "''"
	}
	plain := true
	for i := 0; i < len(w); i++ {
		c := w[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_./:,+=@%!^", c) >= 0) {
			plain = false
			break
		}
	}
	if plain {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}
