# Every operand is checked, and none of these is a mistake: guards, branches, loops, keys
# and templates that read facts correctly load without a diagnostic.
rule "null_guard" {
  when     = facts.imds != null && facts.imds.class == "timeout"
  severity = "critical"
  summary  = facts.imds == null ? "no IMDS facts" : "IMDS: ${facts.imds.class}"
  hint     = "%{ if facts.imds.reachable }reachable%{ else }${coalesce(facts.imds.error, "no error")}%{ endif }"
}
rule "first_rule" {
  when     = length(facts.firewall.rules) > 0 && facts.firewall.rules[0].blocks
  severity = "warning"
  summary  = "first: ${try(facts.firewall.rules[0].chain, "")} ${element(facts.firewall.rules, 0).chain}"
  evidence = {
    chains                  = facts.firewall.rules[*].chain
    "${facts.imds.class}"   = true
    by_chain                = { for r in facts.firewall.rules : r.chain => r.id... }
    positions               = [for i, r in facts.firewall.rules : i if r.blocks]
    probes                  = { for k, p in facts.probes : k => p.ok }
    imds_probe              = lookup(facts.probes, "imds", { ok = false, error = "", duration_ms = 0 }).ok
    pids                    = flatten([for s in facts.proxy.sources : s.pids])
    mixed                   = facts.imds.reachable ? 1 : "x"
    maybe                   = facts.imds.reachable ? facts.firewall.rules : []
    status                  = merge({ a = 1 }, { b = facts.imds.status })
  }
}
rule "loops" {
  when     = anytrue([for s in facts.proxy.sources : contains(s.clients, "curl") || anytrue([for p in s.pids : p == 1 && s.kind == "process"])])
  severity = "info"
  summary  = "%{ for r in facts.firewall.rules }${r.chain} %{ endfor }"
}
rule "can_and_try" {
  when     = can(regex("^http_4", facts.imds.class)) || try(regex("^(\\d+)", facts.imds.error)[0], "") != ""
  severity = "info"
  summary  = "x"
}
