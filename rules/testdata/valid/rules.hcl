# Rules with every attribute, null guards, and facts interpolated into text.
rule "imds_unreachable" {
  when     = facts.imds != null && contains(["connection_refused", "timeout", "no_route"], facts.imds.class)
  severity = "critical"
  summary  = "IMDS at ${facts.imds.endpoint} is unreachable: ${facts.imds.class} after ${facts.imds.attempts} attempts"
  hint     = "look for a firewall rule or route that stops traffic to 169.254.169.254"
  evidence = {
    class      = facts.imds.class
    latency_ms = facts.imds.latency_ms
  }
}

rule "imds_slow" {
  when     = try(facts.imds.latency_ms > 500, false)
  severity = "warning"
  summary  = "IMDS answers slowly (${floor(facts.imds.latency_ms)} ms)"
  enabled  = false
}

rule "firewall_blocks" {
  when     = anytrue([for r in facts.firewall.rules : r.blocks && r.scope == "everyone"])
  severity = "critical"
  summary  = "${length([for r in facts.firewall.rules : r if r.blocks])} firewall rule(s) block IMDS"
  evidence = {
    rules = [for r in facts.firewall.rules : r.spec if r.blocks]
  }
}

rule "route_odd" {
  when     = facts.route.type == "unicast" ? !facts.route.ok : facts.route.type != "local"
  severity = "info"
  summary  = "the route to IMDS is ${facts.route.type}"
}

rule "probe_failed" {
  when     = anytrue([for name, p in facts.probes : !p.ok])
  severity = "warning"
  summary  = "probes failed: ${join(", ", sort([for name, p in facts.probes : name if !p.ok]))}"
}
