package firewall

import (
	"bytes"
	"encoding/xml"
	"strings"

	"github.com/imdsmend/imdsmend/internal/paths"
)

// firewalld keeps direct rules in /etc/firewalld/direct.xml:
//
//	<rule ipv="ipv4" table="filter" chain="OUTPUT" priority="0">-d 169.254.169.254 -j DROP</rule>
//
// and puts them in CHAIN_direct (a chain of the rule's own when it names one).

// directRule is one <rule> (or <passthrough>) of direct.xml.
type directRule struct {
	family, table, chain string
	key                  string
	line                 int
	priority             string
	args                 []string
}

// parseDirectXML reads direct.xml's rules; what it can't read ends the list.
func parseDirectXML(data []byte, users *userDB) []directRule {
	dec := xml.NewDecoder(bytes.NewReader(data))
	var rules []directRule
	for {
		tok, err := dec.Token()
		if err != nil {
			return rules
		}
		start, ok := tok.(xml.StartElement)
		if !ok || start.Name.Local != "rule" {
			continue
		}
		line, _ := dec.InputPos()
		r := directRule{table: "filter", line: line}
		for _, a := range start.Attr {
			switch a.Name.Local {
			case "ipv":
				r.family = a.Value
			case "table":
				r.table = a.Value
			case "chain":
				r.chain = a.Value
			case "priority":
				r.priority = a.Value
			}
		}
		var args string
		if err := dec.DecodeElement(&args, &start); err != nil {
			return rules
		}
		words, err := SplitWords(strings.TrimSpace(args))
		if err != nil {
			continue
		}
		r.key = RuleKey(words, r.family == "ipv6", users)
		r.args = words
		rules = append(rules, r)
	}
}

// findDirect finds r among firewalld's direct rules.
func (s *sourceIndex) findDirect(r *Rule, key string) (Source, bool) {
	if s.direct == nil {
		s.direct = []directRule{}
		if data, err := s.p.ReadFile(paths.FirewalldDirect); err == nil {
			s.direct = parseDirectXML(data, s.users)
		}
	}
	for _, d := range s.direct {
		if d.family == r.Family && d.table == r.Table && d.key == key && (r.Chain == d.chain+"_direct" || r.Chain == d.chain) {
			return Source{FrontEnd: FrontEndFirewalld, File: paths.FirewalldDirect, Line: d.line}, true
		}
	}
	return Source{}, false
}

// isFirewalldChain names the chains firewalld's iptables backend makes.
func isFirewalldChain(chain string) bool {
	for _, s := range []string{"_direct", "_ZONES", "_ZONES_SOURCE", "_POLICIES", "_POLICIES_pre", "_POLICIES_post"} {
		if strings.HasSuffix(chain, s) {
			return true
		}
	}
	return false
}

// DirectRule is a rule of firewalld's direct.xml, as `firewall-cmd --direct --add-rule`
// takes it: IPV TABLE CHAIN PRIORITY ARGS....
type DirectRule struct {
	IPV, Table, Chain, Priority string
	Args                        []string
}

// FirewalldDirectRuleAt reads the <rule> of direct.xml (data) that starts on line.
func FirewalldDirectRuleAt(data []byte, line int) (DirectRule, bool) {
	for _, r := range parseDirectXML(data, nil) {
		if r.line == line {
			return DirectRule{IPV: r.family, Table: r.table, Chain: r.chain, Priority: r.priority, Args: r.args}, true
		}
	}
	return DirectRule{}, false
}
