package facts

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/gocty"
)

// Type is the cty type of the policy's `facts` variable, derived from the Facts struct.
func Type() cty.Type { return TypeOf(Facts{}) }

// TypeOf is the cty type of a struct whose cty tags form a facts schema: Facts, or another
// set of facts the policy language reads (imdsmend fleet's).
func TypeOf(v any) cty.Type {
	t, err := gocty.ImpliedType(v)
	if err != nil {
		panic(fmt.Sprintf("facts: struct tags do not form a cty type: %v", err))
	}
	return t
}

// Value converts f into the value of the policy's `facts` variable. Nil sections become null.
func Value(f *Facts) (cty.Value, error) {
	if f == nil {
		return cty.NullVal(Type()), nil
	}
	return ValueOf(f, Type())
}

// ValueOf converts v, a pointer to a struct of type t (TypeOf), into a facts value: nil
// sections become null, nil lists and maps inside them empty.
func ValueOf(v any, t cty.Type) (cty.Value, error) {
	val, err := gocty.ToCtyValue(v, t)
	if err != nil {
		return cty.NilVal, fmt.Errorf("convert facts to policy values: %w", err)
	}
	// Only a missing section means "unknown"; a nil slice or map inside one is empty, so
	// `for r in facts.firewall.rules` works when no rule was found.
	return cty.Transform(val, func(_ cty.Path, v cty.Value) (cty.Value, error) {
		switch t := v.Type(); {
		case !v.IsNull():
		case t.IsListType():
			return cty.ListValEmpty(t.ElementType()), nil
		case t.IsMapType():
			return cty.MapValEmpty(t.ElementType()), nil
		}
		return v, nil
	})
}

// Field describes one attribute of the facts schema, for docs and `imdsmend facts`.
type Field struct {
	Path string // e.g. facts.imds.class
	Type string // HCL type expression, e.g. list(object)
	Doc  string
}

// sectionDocs holds the docs of attributes whose struct serves two sections and whose text
// differs between them: IMDS's docs are written for facts.imds.
var sectionDocs = map[string]string{
	"facts.imds_ipv6.endpoint": "Base URL probed: http://[fd00:ec2::254].",
}

// Fields lists every attribute of the facts schema in declaration order.
func Fields() []Field { return FieldsOf(Facts{}, "facts") }

// FieldsOf lists every attribute of a struct with cty tags (TypeOf), named from prefix.
func FieldsOf(v any, prefix string) []Field {
	var out []Field
	walkFields(reflect.TypeOf(v), prefix, &out)
	return out
}

func walkFields(t reflect.Type, prefix string, out *[]Field) {
	for i := range t.NumField() {
		sf := t.Field(i)
		name := sf.Tag.Get("cty")
		if name == "" {
			continue
		}
		path := prefix + "." + name
		ft := sf.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		doc := sf.Tag.Get("doc")
		if d, ok := sectionDocs[path]; ok {
			doc = d
		}
		if strings.HasSuffix(sf.Tag.Get("json"), ",omitempty") {
			// Policies always see the attribute; the JSON form drops it when empty.
			doc += " Left out of the JSON form (`imdsmend facts --format json`, the report) when empty."
		}
		*out = append(*out, Field{Path: path, Type: typeName(ft), Doc: doc})
		switch {
		case ft.Kind() == reflect.Struct:
			walkFields(ft, path, out)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			walkFields(ft.Elem(), path+"[*]", out)
		case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct:
			walkFields(ft.Elem(), path+"[*]", out)
		}
	}
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "bool"
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Float64, reflect.Float32:
		return "number"
	case reflect.Slice:
		return "list(" + typeName(t.Elem()) + ")"
	case reflect.Map:
		return "map(" + typeName(t.Elem()) + ")"
	case reflect.Struct:
		return "object"
	case reflect.Pointer:
		return typeName(t.Elem())
	}
	return t.Kind().String()
}

// Markdown renders the facts schema as the reference table in docs/facts.md.
func Markdown() string {
	var b strings.Builder
	b.WriteString("# Facts\n\n")
	b.WriteString("Generated from `facts/*.go` by `make docs` (`imdsmend facts --schema`); a test fails when this file drifts.\n\n")
	b.WriteString("Policy expressions see these as the variable `facts`. A section whose probe failed is `null`;\n")
	b.WriteString("rules that read it report `unknown` instead of firing. `[*]` marks the elements of a list or map.\n\n")
	b.WriteString("| attribute | type | meaning |\n| --- | --- | --- |\n")
	for _, f := range Fields() {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", f.Path, f.Type, strings.ReplaceAll(f.Doc, "|", `\|`))
	}
	return b.String()
}
