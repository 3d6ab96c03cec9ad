rule "always" {
  when     = facts.imds.reachable || true # ERROR: This condition is true whatever the facts are
  severity = "info"
  summary  = "always fires"
}
