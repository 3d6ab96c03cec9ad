// Package redact removes secrets from text before it leaves the process: IMDS tokens, AWS
// credentials, passwords in URLs and key=value pairs. The journal, the text fallback and
// anything else that logs run values through String.
package redact

import (
	"math"
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

// looksRandom tells tokens and secret keys (mixed case, digits, high entropy) from paths,
// hex digests and identifiers, which lack one of those.
func looksRandom(s string) bool {
	var upper, lower, digit bool
	counts := map[rune]int{}
	for _, r := range s {
		switch {
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= '0' && r <= '9':
			digit = true
		}
		counts[r]++
	}
	if !upper || !lower || !digit {
		return false
	}
	var entropy float64
	n := float64(len(s))
	for _, c := range counts {
		p := float64(c) / n
		entropy -= p * math.Log2(p)
	}
	return entropy >= 4.0
}
