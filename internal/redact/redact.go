// Package redact removes secrets from text before it leaves the process: IMDS tokens, AWS
// credentials, passwords in URLs and key=value pairs. The journal, the text fallback and
// anything else that logs run values through String.
package redact

import (
	"regexp"
	"strings"
	"sync"
)

// Mask replaces every secret.
const Mask = "REDACTED"

var (
	// scheme://user:password@host keeps the user, masks the password.
	urlPassword = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*):[^/\s@]*@`)
	// key=value, key: value, "key": "value" for keys that name secrets. The value may start
	// with an auth scheme (Authorization: Bearer …).
	keyValue = regexp.MustCompile(`(?i)\b((?:x-aws-ec2-metadata-)?token|secret[a-z_]*|secretaccesskey|password|passwd|credentials?|authorization|proxy-authorization)(["']?\s*[:=]\s*["']?)((?:(?:bearer|basic|aws4-hmac-sha256)\s+)?[^\s"',;&]+)`)
	// AWS access key IDs (long-term AKIA, temporary ASIA).
	accessKeyID = regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`)
	// Runs of base64/base64url characters long enough to be a token or a secret key; each
	// is kept unless it looks random (see looksRandom).
	longRun = regexp.MustCompile(`[A-Za-z0-9+/_-]{32,}={0,2}`)
)

var (
	mu    sync.RWMutex
	known = map[string]bool{}
)

// Register adds an exact secret (an IMDS token the process received) to mask wherever it
// appears, whatever its shape. Secrets shorter than 8 characters are ignored: masking
// them would mangle ordinary words.
func Register(secret string) {
	if len(secret) < 8 {
		return
	}
	mu.Lock()
	known[secret] = true
	mu.Unlock()
}

// String returns s with every secret it recognises replaced by Mask.
func String(s string) string {
	mu.RLock()
	for k := range known {
		s = strings.ReplaceAll(s, k, Mask)
	}
	mu.RUnlock()
	s = urlPassword.ReplaceAllString(s, "${1}:"+Mask+"@")
	s = keyValue.ReplaceAllString(s, "${1}${2}"+Mask)
	s = accessKeyID.ReplaceAllString(s, Mask)
	return longRun.ReplaceAllStringFunc(s, func(run string) string {
		if looksRandom(run) {
			return Mask
		}
		return run
	})
}

// looksRandom tells tokens and secret keys from paths, hex digests and identifiers. A
// random base64 string mixes upper and lower case and switches between letter cases and
// digits every other character or so; paths, hex digests and words with a number at the
// end lack a case or switch about once in six. Separators (/ + - _ =) are passed over.
// Of a million random tokens shaped like IMDS's, none switched less than once in five;
// tokens known exactly are masked whatever their shape (Register).
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
