package firewall

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{`-A OUTPUT -j DROP`, []string{"-A", "OUTPUT", "-j", "DROP"}, false},
		{"  -d\t169.254.169.254/32  ", []string{"-d", "169.254.169.254/32"}, false},
		{`-m comment --comment "block \"imds\" for now; see $TICKET"`, []string{"-m", "comment", "--comment", `block "imds" for now; see $TICKET`}, false},
		{`--comment "a\\b\c"`, []string{"--comment", `a\b\c`}, false},
		// iptables escapes an apostrophe inside double quotes (xtables_save_string).
		{`-m comment --comment "don\'t" -j ACCEPT`, []string{"-m", "comment", "--comment", "don't", "-j", "ACCEPT"}, false},
		{`--comment 'it''s' x`, []string{"--comment", "its", "x"}, false},
		{`--comment 'a "b" \c'`, []string{"--comment", `a "b" \c`}, false},
		{`a\ b c`, []string{"a b", "c"}, false},
		{`""`, []string{""}, false},
		{``, nil, false},
		{`"open`, nil, true},
		{`'open`, nil, true},
		{`trailing\`, nil, true},
	}
	for _, tt := range tests {
		got, err := SplitWords(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("SplitWords(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("SplitWords(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestQuoteWords(t *testing.T) {
	words := []string{"iptables", "-t", "filter", "-D", "OUTPUT", "!", "-d", "169.254.169.254/32", "--comment", `it's "x"; $y`, ""}
	line := QuoteWords(words)
	if want := `iptables -t filter -D OUTPUT ! -d 169.254.169.254/32 --comment 'it'\''s "x"; $y' ''`; line != want {
		t.Errorf("QuoteWords = %s, want %s", line, want)
	}
	back, err := SplitWords(line)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(words, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{`-A OUTPUT -j DROP`, `--comment "a \"b\""`, `'x' y\ z`, `"\\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitWords(s)
		if err != nil {
			return
		}
		back, err := SplitWords(QuoteWords(words))
		if err != nil {
			t.Fatalf("QuoteWords(%q) does not split: %v", words, err)
		}
		if len(words) == 0 && len(back) == 0 {
			return
		}
		if diff := cmp.Diff(words, back); diff != "" {
			t.Fatalf("round trip of %q (-want +got):\n%s", s, diff)
		}
	})
}
