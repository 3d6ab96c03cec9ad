package facts

// Firewall lists the packet filter rules that IMDS traffic from this host meets.
type Firewall struct {
	// Rules holds every rule that matches TCP traffic to an IMDS endpoint.
	Rules []FirewallRule `cty:"rules" json:"rules" doc:"Every rule that matches TCP traffic to an IMDS endpoint, in traversal order."`
}

// FirewallRule is one rule that matches IMDS traffic.
type FirewallRule struct {
	ID      string `cty:"id" json:"id" doc:"Stable identifier: backend/family/table/chain and a hash of the spec."`
	Backend string `cty:"backend" json:"backend" doc:"\"nft\" or \"legacy\" for iptables rules, \"nftables\" for native nft rules."`
	Family  string `cty:"family" json:"family" doc:"\"ipv4\" or \"ipv6\"."`
	Table   string `cty:"table" json:"table" doc:"Table name (filter, nat, mangle, raw, security, or the nft table)."`
	Chain   string `cty:"chain" json:"chain" doc:"Chain the rule sits in."`
	Spec    string `cty:"spec" json:"spec" doc:"The rule as iptables -S (or nft) prints it."`
	Effect  string `cty:"effect" json:"effect" doc:"reject, drop, redirect or accept."`
	Scope   string `cty:"scope" json:"scope" doc:"Whose traffic it hits: everyone, root, non_root, forwarded."`
	Blocks  bool   `cty:"blocks" json:"blocks" doc:"It stops root's (imdsmend's, cloud-init's) requests: a blocker."`
}
