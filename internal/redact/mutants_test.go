package redact

// Tests that pin the boundaries mutation testing (tests/mutate, docs/testing.md) showed
// no other test did.

import (
	"strings"
	"testing"
)

// blocks joins runs of 'A' and 'b' of the given lengths: len(sizes)-1 case switches.
func blocks(sizes ...int) string {
	var b strings.Builder
	for i, n := range sizes {
		c := "A"
		if i%2 == 1 {
			c = "b"
		}
		b.WriteString(strings.Repeat(c, n))
	}
	return b.String()
}

// random is a base64 run of n characters that switches class at every character.
func random(n int) string { return strings.Repeat("aB3", n/3+1)[:n] }

func TestStringBoundaries(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"a random run of 31 is kept", "x " + random(31) + " y", "x " + random(31) + " y"},
		{"a random run of 32 is masked", "x " + random(32) + " y", "x " + Mask + " y"},
		{"a random run of 33 is masked", "x " + random(33) + " y", "x " + Mask + " y"},
		{"a token at the very start is masked whole", random(40), Mask},
		{"two = of padding go with the token", random(40) + "== y", Mask + " y"},
		{"a third = stays", random(40) + "=== y", Mask + "= y"},
		// 7 switches in 36 characters: 7/35 is exactly the threshold.
		{"a run at the switch threshold is masked", blocks(5, 5, 5, 5, 4, 4, 4, 4), Mask},
		{"the first pair's switch counts", blocks(1, 5, 5, 5, 5, 5, 5, 5), Mask},
		// 7 switches in 37 characters: 7/36 is under it.
		{"a run just under the threshold is kept", blocks(5, 5, 5, 5, 5, 4, 4, 4), blocks(5, 5, 5, 5, 5, 4, 4, 4)},
		{"upper case and digits only are kept", strings.Repeat("0A1B2C3D4E", 4), strings.Repeat("0A1B2C3D4E", 4)},
		{"lower case and digits only are kept", strings.Repeat("0a1b2c3d4e", 4), strings.Repeat("0a1b2c3d4e", 4)},
		{"text naming every secret hint is still redacted",
			"pass pwd secret token credential session authorization private password=hunter2",
			"pass pwd secret token credential session authorization private password=" + Mask},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := String(tt.in); got != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCharClassBounds(t *testing.T) {
	for c, want := range map[byte]int{
		'A': upper, 'Z': upper, 'a': lower, 'z': lower, '0': digit, '9': digit,
		'@': other, '[': other, '`': other, '{': other, '/': other, ':': other,
	} {
		if got := charClass(c); got != want {
			t.Errorf("charClass(%q) = %d, want %d", c, got, want)
		}
	}
}

// TestStringEdges: separators at the very start or end of the text, keys split at a 'Z'
// before a new word, and the last words that name a property of a secret, not a secret.
func TestStringEdges(t *testing.T) {
	tests := []struct{ in, want string }{
		{"password=", "password="},
		{"password:  ", "password:  "},
		{"=secret", "=secret"},
		{`"=token`, `"=token`},
		{"apiZToken=abc123", "apiZToken=" + Mask},
		{"token_ttl: 21600", "token_ttl: 21600"},
		{"session_expiration=2026-12-01T05:00:00Z", "session_expiration=2026-12-01T05:00:00Z"},
		{"token_expires=3600", "token_expires=3600"},
		{"token_status=401", "token_status=401"},
		{"token_seconds=60", "token_seconds=60"},
	}
	for _, tt := range tests {
		if got := String(tt.in); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
