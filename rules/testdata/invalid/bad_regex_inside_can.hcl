# A bad pattern inside can() is an error in the pattern, not a condition that is always false.
rule "odd_endpoint" {
  when     = can(regex("[", facts.imds.endpoint)) # ERROR: invalid regexp pattern: missing closing ]
  severity = "info"
  summary  = "odd endpoint"
}
rule "odd_class" {
  when     = facts.imds.reachable && try(regex("(", facts.imds.class), "") != "" # ERROR: invalid regexp pattern: missing closing )
  severity = "info"
  summary  = "odd class"
}
