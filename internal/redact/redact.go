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
	// key=value, key: value, "key": "value" for keys that name secrets. The value may start
	// with an auth scheme (Authorization: Bearer …).
	keyValue = regexp.MustCompile(`(?i)\b((?:x-aws-ec2-metadata-)?token|secret[a-z_]*|secretaccesskey|password|passwd|credentials?|authorization|proxy-authorization)(["']?\s*[:=]\s*["']?)((?:(?:bearer|basic|aws4-hmac-sha256)\s+)?[^\s"',;&]+)`)
	// AWS access key IDs (long-term AKIA, temporary ASIA).
	accessKeyID = regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`)
)

// secretKeys are the words keyValue needs, to skip it on text without any (most fields).
var secretKeys = []string{"token", "secret", "passw", "credential", "authorization"}

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
	for _, k := range secretKeys {
		if strings.Contains(lower, k) {
			s = keyValue.ReplaceAllString(s, "${1}${2}"+Mask)
			break
		}
	}
	if strings.Contains(s, "AKIA") || strings.Contains(s, "ASIA") {
		s = accessKeyID.ReplaceAllString(s, Mask)
	}
	return maskRandomRuns(s)
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
