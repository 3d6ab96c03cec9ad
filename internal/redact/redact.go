// Package redact removes secrets from text before it leaves the process: IMDS tokens, AWS
// credentials, passwords in URLs and key=value pairs. The journal, the text fallback and
// anything else that logs run values through String.
package redact

import (
	"regexp"
	"strings"
)

// Mask replaces every secret.
const Mask = "REDACTED"

var (
	// scheme://user:password@host keeps the user, masks the password up to the last '@'
	// of the word: a password written without percent-encoding may hold '/' or '@'.
	urlPassword = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*):[^\s"']*@`)
	// AWS access key IDs (long-term AKIA, temporary ASIA).
	accessKeyID = regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`)
)

// secretHints are the substrings a key naming a secret holds (lower case), to skip the
// key=value scan on text without any (most fields).
var secretHints = []string{"pass", "pwd", "secret", "token", "credential", "session", "authorization", "private"}

// secretWords are the words of a key (split at _ - . and case changes) that make its
// value a secret: AWS_SECRET_ACCESS_KEY, proxy_password, AWS_SESSION_TOKEN, SecretAccessKey.
var secretWords = map[string]bool{
	"password": true, "passwd": true, "pass": true, "pwd": true, "passphrase": true,
	"secret": true, "secretaccesskey": true, "token": true, "credential": true,
	"credentials": true, "session": true, "authorization": true, "privatekey": true,
}

// publicLastWords end keys that name a property of a secret, not the secret itself:
// token_status, X-aws-ec2-metadata-token-ttl-seconds.
var publicLastWords = map[string]bool{"status": true, "ttl": true, "seconds": true, "expiration": true, "expires": true}

// authSchemes may open an Authorization value; the scheme is masked with the credentials.
var authSchemes = []string{"bearer ", "basic ", "aws4-hmac-sha256 "}

// minRandomRun is the shortest run of base64 characters taken for a token or secret key.
const minRandomRun = 32

// String returns s with every secret it recognises replaced by Mask.
func String(s string) string {
	// Each pattern runs only on text that can match it: String sees every field of every
	// journal entry.
	if strings.Contains(s, "://") && strings.Contains(s, "@") {
		s = urlPassword.ReplaceAllString(s, "${1}:"+Mask+"@")
	}
	lower := strings.ToLower(s)
	for _, k := range secretHints {
		if strings.Contains(lower, k) {
			s = maskSecretValues(s)
			break
		}
	}
	if strings.Contains(s, "AKIA") || strings.Contains(s, "ASIA") {
		s = accessKeyID.ReplaceAllString(s, Mask)
	}
	return maskRandomRuns(s)
}

// maskSecretValues masks the value of every key=value, key: value, key = "value" and
// "key": "value" whose key names a secret. A quoted value is masked up to its closing
// quote, an unquoted one up to a blank, quote, comma, semicolon, '&' or bracket.
func maskSecretValues(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '=' && s[i] != ':' {
			continue
		}
		if !secretKey(keyBefore(s, i)) {
			continue
		}
		from, to := valueAfter(s, i+1)
		if from == to {
			continue
		}
		b.WriteString(s[last:from])
		b.WriteString(Mask)
		last, i = to, to-1
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// keyBefore is the key that ends before the separator at sep, past blanks and a closing
// quote.
func keyBefore(s string, sep int) string {
	j := sep
	for j > 0 && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	if j > 0 && (s[j-1] == '"' || s[j-1] == '\'') {
		j--
	}
	end := j
	for j > 0 && keyChar(s[j-1]) {
		j--
	}
	return s[j:end]
}

func keyChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

// secretKey reports whether key names a secret: one of its words is a secret word and
// the last is not a property of one.
func secretKey(key string) bool {
	words := keyWords(key)
	if len(words) == 0 || publicLastWords[words[len(words)-1]] {
		return false
	}
	for i, w := range words {
		if secretWords[w] || w == "private" && i+1 < len(words) && words[i+1] == "key" {
			return true
		}
	}
	return false
}

// keyWords splits key into lower-case words at _ - . and case changes: AWSSecretKey →
// aws secret key.
func keyWords(key string) []string {
	var words []string
	start := 0
	flush := func(end int) {
		if end > start {
			words = append(words, strings.ToLower(key[start:end]))
		}
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '_' || c == '-' || c == '.':
			flush(i)
			start = i + 1
		case i > start && isUpper(c) && (isLower(key[i-1]) || i+1 < len(key) && isUpper(key[i-1]) && isLower(key[i+1])):
			flush(i)
			start = i
		}
	}
	flush(len(key))
	return words
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isLower(c byte) bool { return c >= 'a' && c <= 'z' }

// valueAfter returns the span to mask of the value that starts at i, after blanks.
func valueAfter(s string, i int) (from, to int) {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	if i < len(s) && (s[i] == '"' || s[i] == '\'') {
		q := s[i]
		j := i + 1
		for j < len(s) && s[j] != q && s[j] != '\n' {
			if s[j] == '\\' && q == '"' && j+1 < len(s) {
				j++
			}
			j++
		}
		return i + 1, min(j, len(s))
	}
	lower := strings.ToLower(s[i:min(i+len("aws4-hmac-sha256 "), len(s))])
	j := i
	for _, scheme := range authSchemes {
		if strings.HasPrefix(lower, scheme) {
			j += len(scheme)
			break
		}
	}
	for j < len(s) && !strings.ContainsRune(" \t\r\n\"',;&()[]{}", rune(s[j])) {
		j++
	}
	return i, j
}

// maskRandomRuns masks each run of base64/base64url characters (with up to two '='
// of padding) that is long enough to be a token or a secret key and looks random.
func maskRandomRuns(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		if !base64Char(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && base64Char(s[j]) {
			j++
		}
		end := j
		for end < len(s) && end-j < 2 && s[end] == '=' {
			end++
		}
		if j-i >= minRandomRun && looksRandom(s[i:j]) {
			b.WriteString(s[last:i])
			b.WriteString(Mask)
			last = end
		}
		i = end
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func base64Char(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '_' || c == '-'
}

// looksRandom tells tokens and secret keys from paths, hex digests and identifiers. A
// random base64 string mixes upper and lower case and switches between letter cases and
// digits every other character or so; paths, hex digests and words with a number at the
// end lack a case or switch about once in six. Separators (/ + - _ =) are passed over.
// Of a million random tokens shaped like IMDS's, none switched less than once in five.
func looksRandom(s string) bool {
	var seen [4]bool
	switches, alnum, prev := 0, 0, other
	for i := range len(s) {
		c := charClass(s[i])
		if c == other {
			continue
		}
		seen[c] = true
		if alnum > 0 && c != prev {
			switches++
		}
		alnum++
		prev = c
	}
	if !seen[upper] || !seen[lower] || alnum < 2 {
		return false
	}
	return float64(switches)/float64(alnum-1) >= 0.2
}

const (
	upper = iota
	lower
	digit
	other
)

func charClass(c byte) int {
	switch {
	case c >= 'A' && c <= 'Z':
		return upper
	case c >= 'a' && c <= 'z':
		return lower
	case c >= '0' && c <= '9':
		return digit
	}
	return other
}
