# Loops iterate over facts; nested loops over computed lists could run for ever.
rule "busy" {
  when     = length([for a in concat(facts.firewall.rules, [1, 2, 3]) : a]) > 0 # ERROR: A for expression iterates over facts
  severity = "info"
  summary  = "busy"
}
