# A typo in a fact's name is caught at load time, with a suggestion.
rule "imds_down" {
  when     = facts.imds.clas == "timeout" # ERROR: Did you mean "class"?
  severity = "critical"
  summary  = "IMDS is down"
}
