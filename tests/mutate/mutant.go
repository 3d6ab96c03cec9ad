package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"sort"
	"strconv"
	"strings"
)

// Mutant is one small change to one file: the bytes [Start, End) become Repl.
type Mutant struct {
	File  string `json:"file"` // relative to the module root
	Line  int    `json:"line"`
	Op    string `json:"op"`
	Start int    `json:"-"`
	End   int    `json:"-"`
	Repl  string `json:"-"`
	Orig  string `json:"original"` // the source line(s) it changes, whitespace collapsed
	Mut   string `json:"mutant"`   // the same line(s) after the change
}

func (m Mutant) String() string {
	return fmt.Sprintf("%s:%d: %s → %s", m.File, m.Line, m.Orig, m.Mut)
}

// Apply returns src with the mutation made.
func (m Mutant) Apply(src []byte) []byte {
	out := make([]byte, 0, len(src)+len(m.Repl))
	out = append(out, src[:m.Start]...)
	out = append(out, m.Repl...)
	return append(out, src[m.End:]...)
}

// Operators a mutant can come from, as shown in the JSON output.
const (
	opEquality   = "flip ==/!="
	opBoundary   = "relational boundary"
	opLogical    = "flip &&/||"
	opNegate     = "negate condition"
	opDropNot    = "drop !"
	opNilError   = "return nil error"
	opDropCall   = "remove call"
	opIntConst   = "integer ±1"
	opBoolConst  = "swap true/false"
	removedLabel = "(removed)"
)

var flipped = map[token.Token]token.Token{
	token.EQL: token.NEQ, token.NEQ: token.EQL,
	token.LSS: token.LEQ, token.LEQ: token.LSS,
	token.GTR: token.GEQ, token.GEQ: token.GTR,
	token.LAND: token.LOR, token.LOR: token.LAND,
}

// Mutants lists every one-line mutant of one Go source file, in source order. name is
// the path shown in the output.
func Mutants(name string, src []byte) ([]Mutant, error) {
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	g := gen{name: name, src: src, tf: fset.File(file.Pos())}
	var funcs []*ast.FuncType // enclosing function signatures, innermost last
	var stack []ast.Node
	ast.Inspect(file, func(n ast.Node) bool {
		if n == nil {
			if _, ok := stack[len(stack)-1].(*ast.FuncLit); ok {
				funcs = funcs[:len(funcs)-1]
			} else if _, ok := stack[len(stack)-1].(*ast.FuncDecl); ok {
				funcs = funcs[:len(funcs)-1]
			}
			stack = stack[:len(stack)-1]
			return true
		}
		stack = append(stack, n)
		switch n := n.(type) {
		case *ast.GenDecl:
			if n.Tok == token.IMPORT {
				return false
			}
		case *ast.FuncDecl:
			funcs = append(funcs, n.Type)
		case *ast.FuncLit:
			funcs = append(funcs, n.Type)
		case *ast.BinaryExpr:
			if to, ok := flipped[n.Op]; ok {
				op := opEquality
				switch n.Op {
				case token.LSS, token.LEQ, token.GTR, token.GEQ:
					op = opBoundary
				case token.LAND, token.LOR:
					op = opLogical
				}
				g.add(op, n.OpPos, n.OpPos+token.Pos(len(n.Op.String())), to.String())
			}
		case *ast.IfStmt:
			g.negate(n.Cond)
		case *ast.ForStmt:
			g.negate(n.Cond)
		case *ast.UnaryExpr:
			if n.Op == token.NOT {
				g.add(opDropNot, n.OpPos, n.X.Pos(), "")
			}
		case *ast.ReturnStmt:
			if len(funcs) > 0 {
				g.nilErrors(funcs[len(funcs)-1], n)
			}
		case *ast.ExprStmt:
			if _, ok := n.X.(*ast.CallExpr); ok {
				g.add(opDropCall, n.Pos(), n.End(), "")
			}
		case *ast.BasicLit:
			g.intConst(n)
		case *ast.Ident:
			switch n.Name {
			case "true":
				g.add(opBoolConst, n.Pos(), n.End(), "false")
			case "false":
				g.add(opBoolConst, n.Pos(), n.End(), "true")
			}
		}
		return true
	})
	sort.SliceStable(g.out, func(i, j int) bool { return g.out[i].Start < g.out[j].Start })
	return g.out, nil
}

type gen struct {
	name string
	src  []byte
	tf   *token.File
	out  []Mutant
}

func (g *gen) add(op string, from, to token.Pos, repl string) {
	start, end := g.tf.Offset(from), g.tf.Offset(to)
	m := Mutant{File: g.name, Line: g.tf.Line(from), Op: op, Start: start, End: end, Repl: repl}
	m.Orig = lineText(g.src, start, end)
	m.Mut = lineText(m.Apply(g.src), start, start+len(repl))
	if m.Mut == "" {
		m.Mut = removedLabel
	}
	g.out = append(g.out, m)
}

// negate wraps a condition in !( ). Conditions that are already a negation or an ==/!=
// comparison are left out: dropping the ! or flipping the operator makes the same mutant.
func (g *gen) negate(cond ast.Expr) {
	switch c := cond.(type) {
	case nil:
		return
	case *ast.UnaryExpr:
		if c.Op == token.NOT {
			return
		}
	case *ast.BinaryExpr:
		if c.Op == token.EQL || c.Op == token.NEQ {
			return
		}
	}
	start, end := g.tf.Offset(cond.Pos()), g.tf.Offset(cond.End())
	g.add(opNegate, cond.Pos(), cond.End(), "!("+string(g.src[start:end])+")")
}

// nilErrors replaces each non-nil result returned where the signature says error.
func (g *gen) nilErrors(fn *ast.FuncType, ret *ast.ReturnStmt) {
	if fn.Results == nil {
		return
	}
	var types []ast.Expr
	for _, f := range fn.Results.List {
		for range max(1, len(f.Names)) {
			types = append(types, f.Type)
		}
	}
	if len(ret.Results) != len(types) {
		return // a naked return or return f() of a multi-value call
	}
	for i, r := range ret.Results {
		if isIdent(types[i], "error") && !isIdent(r, "nil") {
			g.add(opNilError, r.Pos(), r.End(), "nil")
		}
	}
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// intConst adds the literal's value ±1, written in the literal's own base.
func (g *gen) intConst(lit *ast.BasicLit) {
	if lit.Kind != token.INT {
		return
	}
	v, err := strconv.ParseInt(lit.Value, 0, 64)
	if err != nil {
		return // too wide for int64: leave it alone
	}
	lower := strings.ToLower(lit.Value)
	format := func(n int64) string {
		switch {
		case n < 0:
			return "(" + strconv.FormatInt(n, 10) + ")" // parenthesised: x-0 must not become x--1
		case strings.HasPrefix(lower, "0x"):
			return lit.Value[:2] + strconv.FormatInt(n, 16)
		case strings.HasPrefix(lower, "0o"):
			return lit.Value[:2] + strconv.FormatInt(n, 8)
		case strings.HasPrefix(lower, "0b"):
			return lit.Value[:2] + strconv.FormatInt(n, 2)
		case len(lit.Value) > 1 && lit.Value[0] == '0':
			return "0" + strconv.FormatInt(n, 8)
		}
		return strconv.FormatInt(n, 10)
	}
	g.add(opIntConst, lit.Pos(), lit.End(), format(v+1))
	g.add(opIntConst, lit.Pos(), lit.End(), format(v-1))
}

// lineText returns the whole lines holding src[start:end], whitespace collapsed.
func lineText(src []byte, start, end int) string {
	from := strings.LastIndexByte(string(src[:start]), '\n') + 1
	to := len(src)
	if i := strings.IndexByte(string(src[end:]), '\n'); i >= 0 {
		to = end + i
	}
	return strings.Join(strings.Fields(string(src[from:to])), " ")
}
