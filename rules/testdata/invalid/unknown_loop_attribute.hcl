# Attributes of list elements are checked too.
rule "blocked" {
  when     = anytrue([for r in facts.firewall.rules : r.blokcs]) # ERROR: Did you mean "blocks"?
  severity = "critical"
  summary  = "a firewall rule blocks IMDS"
}
