package facts

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsmend/imdsmend/facts/firewall"
	"github.com/zclconf/go-cty/cty"
)

// TestFactsDocUpToDate fails when docs/facts.md differs from what `make docs` generates.
func TestFactsDocUpToDate(t *testing.T) {
	data, err := os.ReadFile("../docs/facts.md")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Markdown(), string(data)); diff != "" {
		t.Errorf("docs/facts.md is out of date; run `make docs` (-generated +file):\n%s", diff)
	}
}

// TestFieldsMatchType: the documented fields and the policy's type are the same tree, and
// every field has a doc string.
func TestFieldsMatchType(t *testing.T) {
	var fromType []string
	var walk func(prefix string, ty cty.Type)
	walk = func(prefix string, ty cty.Type) {
		switch {
		case ty.IsObjectType():
			for name, at := range ty.AttributeTypes() {
				fromType = append(fromType, prefix+"."+name)
				walk(prefix+"."+name, at)
			}
		case ty.IsListType() || ty.IsMapType():
			walk(prefix+"[*]", ty.ElementType())
		}
	}
	walk("facts", Type())
	var fromFields []string
	for _, f := range Fields() {
		fromFields = append(fromFields, f.Path)
		if strings.TrimSpace(f.Doc) == "" {
			t.Errorf("%s has no doc tag", f.Path)
		}
	}
	slices.Sort(fromType)
	slices.Sort(fromFields)
	if diff := cmp.Diff(fromType, fromFields); diff != "" {
		t.Errorf("Fields() and Type() disagree (-type +fields):\n%s", diff)
	}
}

// TestValueNulls: a missing section is null (its rules become unknown); a nil list or map
// inside a section is empty, so rules can iterate over it.
func TestValueNulls(t *testing.T) {
	v, err := Value(&Facts{Firewall: &firewall.Firewall{}})
	if err != nil {
		t.Fatal(err)
	}
	if !v.GetAttr("imds").IsNull() {
		t.Error("facts.imds is not null without an IMDS section")
	}
	rules := v.GetAttr("firewall").GetAttr("rules")
	if rules.IsNull() || rules.LengthInt() != 0 {
		t.Errorf("facts.firewall.rules = %#v, want an empty list", rules)
	}
	if probes := v.GetAttr("probes"); probes.IsNull() || probes.LengthInt() != 0 {
		t.Errorf("facts.probes = %#v, want an empty map", probes)
	}
	null, err := Value(nil)
	if err != nil || !null.IsNull() || !null.Type().Equals(Type()) {
		t.Errorf("Value(nil) = %#v, %v; want a null of the facts type", null, err)
	}
}

// TestJSONNamesMatchPolicyNames: `imdsmend facts --format json` (json tags) and the policy
// (cty tags) name every fact alike, so a capture loads into a policy test as it reads.
func TestJSONNamesMatchPolicyNames(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(rt reflect.Type)
	walk = func(rt reflect.Type) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Map {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || seen[rt] {
			return
		}
		seen[rt] = true
		for i := range rt.NumField() {
			sf := rt.Field(i)
			name := sf.Tag.Get("cty")
			if name == "" {
				continue
			}
			if j, _, _ := strings.Cut(sf.Tag.Get("json"), ","); j != name {
				t.Errorf("%s.%s: json name %q, policy name %q", rt.Name(), sf.Name, j, name)
			}
			walk(sf.Type)
		}
	}
	walk(reflect.TypeOf(Facts{}))
}

// TestFieldDocs: docs that must say something particular about one attribute.
func TestFieldDocs(t *testing.T) {
	tests := []struct{ path, want, not string }{
		// The IPv6 section shares IMDS's struct, whose docs name the IPv4 endpoint.
		{path: "facts.imds.endpoint", want: "http://169.254.169.254"},
		{path: "facts.imds_ipv6.endpoint", want: "http://[fd00:ec2::254]", not: "169.254.169.254"},
		// Attributes the JSON form leaves out when empty say so: a reader of
		// `imdsmend facts --format json` would otherwise take them for missing.
		{path: "facts.imds.error", want: "Left out of the JSON form"},
		{path: "facts.imds_ipv6.instance_id", want: "Left out of the JSON form"},
		{path: "facts.imds.class", not: "Left out"},
	}
	docs := map[string]string{}
	for _, f := range Fields() {
		docs[f.Path] = f.Doc
	}
	for _, tt := range tests {
		doc, ok := docs[tt.path]
		if !ok || !strings.Contains(doc, tt.want) || (tt.not != "" && strings.Contains(doc, tt.not)) {
			t.Errorf("%s: doc %q, want it to contain %q and not %q", tt.path, doc, tt.want, tt.not)
		}
	}
}
