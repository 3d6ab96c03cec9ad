package main

import (
	"go/parser"
	"go/token"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMutants(t *testing.T) {
	tests := []struct {
		name string
		body string // inside package p
		want []string
	}{
		{
			name: "equality and logical operators",
			body: "func f(a, b int) bool {\n\treturn a == b && a != 0\n}",
			want: []string{
				"4: return a == b && a != 0 → return a != b && a != 0 [flip ==/!=]",
				"4: return a == b && a != 0 → return a == b || a != 0 [flip &&/||]",
				"4: return a == b && a != 0 → return a == b && a == 0 [flip ==/!=]",
				"4: return a == b && a != 0 → return a == b && a != 1 [integer ±1]",
				"4: return a == b && a != 0 → return a == b && a != (-1) [integer ±1]",
			},
		},
		{
			name: "relational boundaries and negated conditions",
			body: "func f(a int) {\n\tfor a < 3 {\n\t\ta++\n\t}\n\tif a >= 5 {\n\t\tpanic(a)\n\t}\n}",
			want: []string{
				"4: for a < 3 { → for !(a < 3) { [negate condition]",
				"4: for a < 3 { → for a <= 3 { [relational boundary]",
				"4: for a < 3 { → for a < 4 { [integer ±1]",
				"4: for a < 3 { → for a < 2 { [integer ±1]",
				"7: if a >= 5 { → if !(a >= 5) { [negate condition]",
				"7: if a >= 5 { → if a > 5 { [relational boundary]",
				"7: if a >= 5 { → if a >= 6 { [integer ±1]",
				"7: if a >= 5 { → if a >= 4 { [integer ±1]",
				"8: panic(a) → (removed) [remove call]",
			},
		},
		{
			// Negating !ok or an ==/!= test would repeat the drop-! and flip mutants.
			name: "no negation that repeats another mutant",
			body: "func f(ok bool, n int) {\n\tif !ok {\n\t\treturn\n\t}\n\tif n == 1 {\n\t\treturn\n\t}\n\tif n != 1 {\n\t\treturn\n\t}\n}",
			want: []string{
				"4: if !ok { → if ok { [drop !]",
				"7: if n == 1 { → if n != 1 { [flip ==/!=]",
				"7: if n == 1 { → if n == 2 { [integer ±1]",
				"7: if n == 1 { → if n == 0 { [integer ±1]",
				"10: if n != 1 { → if n == 1 { [flip ==/!=]",
				"10: if n != 1 { → if n != 2 { [integer ±1]",
				"10: if n != 1 { → if n != 0 { [integer ±1]",
			},
		},
		{
			name: "returned errors become nil where the signature says error",
			body: "func f() (n int, err error) {\n\tg := func() error { return err }\n\t_ = g\n\tif n > 0 {\n\t\treturn n, nil\n\t}\n\treturn h()\n}\n" +
				"func h() (int, error) { return 0, errors.New(\"x\") }",
			want: []string{
				"4: g := func() error { return err } → g := func() error { return nil } [return nil error]",
				"6: if n > 0 { → if !(n > 0) { [negate condition]",
				"6: if n > 0 { → if n >= 0 { [relational boundary]",
				"6: if n > 0 { → if n > 1 { [integer ±1]",
				"6: if n > 0 { → if n > (-1) { [integer ±1]",
				"11: func h() (int, error) { return 0, errors.New(\"x\") } → func h() (int, error) { return 1, errors.New(\"x\") } [integer ±1]",
				"11: func h() (int, error) { return 0, errors.New(\"x\") } → func h() (int, error) { return (-1), errors.New(\"x\") } [integer ±1]",
				"11: func h() (int, error) { return 0, errors.New(\"x\") } → func h() (int, error) { return 0, nil } [return nil error]",
			},
		},
		{
			name: "constants keep their base; booleans swap; imports stay",
			body: "import \"os\"\n\nvar m, x, b, on = os.FileMode(0o600), 0x1f, 0755, true",
			want: []string{
				"5: var m, x, b, on = os.FileMode(0o600), 0x1f, 0755, true → var m, x, b, on = os.FileMode(0o601), 0x1f, 0755, true [integer ±1]",
				"5: var m, x, b, on = os.FileMode(0o600), 0x1f, 0755, true → var m, x, b, on = os.FileMode(0o577), 0x1f, 0755, true [integer ±1]",
				"5: var m, x, b, on = os.FileMode(0o600), 0x1f, 0755, true → var m, x, b, on = os.FileMode(0o600), 0x20, 0755, true [integer ±1]",
				"5: var m, x, b, on = os.FileMode(0o600), 0x1f, 0755, true → var m, x, b, on = os.FileMode(0o600), 0x1e, 0755, true [integer ±1]",
				"5: var m, x, b, on = os.FileMode(0o600), 0x1f, 0755, true → var m, x, b, on = os.FileMode(0o600), 0x1f, 0756, true [integer ±1]",
				"5: var m, x, b, on = os.FileMode(0o600), 0x1f, 0755, true → var m, x, b, on = os.FileMode(0o600), 0x1f, 0754, true [integer ±1]",
				"5: var m, x, b, on = os.FileMode(0o600), 0x1f, 0755, true → var m, x, b, on = os.FileMode(0o600), 0x1f, 0755, false [swap true/false]",
			},
		},
		{
			name: "a call spread over lines is removed whole",
			body: "func f(s []string) {\n\tprintln(\n\t\ts[0],\n\t)\n}",
			want: []string{
				"4: println( s[0], ) → (removed) [remove call]",
				"5: s[0], → s[1], [integer ±1]",
				"5: s[0], → s[(-1)], [integer ±1]",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := []byte("package p\n\n" + tt.body + "\n")
			ms, err := Mutants("p.go", src)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, m := range ms {
				got = append(got, strings.TrimPrefix(m.String(), "p.go:")+" ["+m.Op+"]")
				// Every mutant must still parse: a syntax error would hide behind "does not compile".
				if _, err := parser.ParseFile(token.NewFileSet(), "p.go", m.Apply(src), 0); err != nil {
					t.Errorf("%s does not parse: %v", m, err)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mutants (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMutantsRejectsBadSource(t *testing.T) {
	if _, err := Mutants("bad.go", []byte("package p\nfunc {")); err == nil || !strings.Contains(err.Error(), "parse bad.go") {
		t.Errorf("Mutants = %v, want a parse error naming the file", err)
	}
}
