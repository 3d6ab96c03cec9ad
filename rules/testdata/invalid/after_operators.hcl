# A mistake is caught in every operand of every operator, not only in the first one:
# after && and ||, in both branches of a conditional, in a for expression's body and
# condition, in function arguments, index keys and template parts.
rule "null_guard" {
  when     = facts.imds != null && facts.imds.clas == "timeout" # ERROR: Did you mean "class"?
  severity = "critical"
  summary  = "a"
}
rule "and_second" {
  when     = facts.imds.reachable && facts.imds.latency > 500 # ERROR: Did you mean "latency_ms"?
  severity = "warning"
  summary  = "b"
}
rule "or_second" {
  when     = facts.imds.reachable || facts.imds.clas == "timeout" # ERROR: Did you mean "class"?
  severity = "warning"
  summary  = "c"
}
rule "cond_true" {
  when     = facts.imds.reachable ? facts.imds.clas == "x" : false # ERROR: Did you mean "class"?
  severity = "warning"
  summary  = "d"
}
rule "cond_false" {
  when     = facts.imds.reachable ? false : facts.imds.clas == "x" # ERROR: Did you mean "class"?
  severity = "warning"
  summary  = "e"
}
rule "for_cond" {
  when     = length([for r in facts.firewall.rules : r if r.blocks && r.chian == "X"]) > 0 # ERROR: Did you mean "chain"?
  severity = "warning"
  summary  = "f"
}
rule "for_body" {
  when     = anytrue([for r in facts.firewall.rules : r.blocks && r.chian == "X"]) # ERROR: Did you mean "chain"?
  severity = "warning"
  summary  = "g"
}
rule "regex_after_and" {
  when     = facts.imds.reachable && regex("[", facts.imds.endpoint) != "" # ERROR: invalid regexp pattern: missing closing ]
  severity = "info"
  summary  = "h"
}
rule "function_arg" {
  when     = facts.imds.reachable && startswith(facts.imds.clas, "http") # ERROR: Did you mean "class"?
  severity = "info"
  summary  = "i"
}
rule "template_part" {
  when     = facts.imds.reachable && "${facts.imds.clas}" == "ok" # ERROR: Did you mean "class"?
  severity = "info"
  summary  = "j"
}
rule "not_operand" {
  when     = facts.imds.reachable && !facts.imds.reachabel # ERROR: Did you mean "reachable"?
  severity = "info"
  summary  = "k"
}
rule "comparison_right" {
  when     = facts.imds.reachable && "timeout" == facts.imds.clas # ERROR: Did you mean "class"?
  severity = "info"
  summary  = "l"
}
rule "summary_conditional" {
  when     = facts.imds.reachable
  severity = "info"
  summary  = facts.imds.reachable ? "up" : "down: ${facts.imds.clas}" # ERROR: Did you mean "class"?
}
rule "index_key" {
  when     = facts.imds.reachable && facts.probes[facts.imds.clas].ok # ERROR: Did you mean "class"?
  severity = "info"
  summary  = "m"
}
rule "evidence_value" {
  when     = facts.imds.reachable
  severity = "info"
  summary  = "n"
  evidence = { class = facts.imds.reachable ? facts.imds.clas : "" } # ERROR: Did you mean "class"?
}
rule "remediate_argument" {
  when     = facts.imds.reachable
  severity = "info"
  summary  = "o"
  remediate "firewall_delete" {
    rules = [for r in facts.firewall.rules : r if r.blocks && !r.delibrate] # ERROR: Did you mean "deliberate"?
  }
}
rule "nested_for" {
  when     = anytrue([for s in facts.proxy.sources : s.leaks || anytrue([for p in s.pids : p > 0 && s.knd == "x"])]) # ERROR: Did you mean "kind"?
  severity = "info"
  summary  = "p"
}
rule "object_key" {
  when     = facts.imds.reachable
  severity = "info"
  summary  = "q"
  evidence = { (facts.imds.reachable ? facts.imds.clas : "none") = true, class = facts.imds.class } # ERROR: Did you mean "class"?
}
