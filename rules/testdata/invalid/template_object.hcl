rule "imds_down" {
  when     = facts.imds.class == "timeout"
  severity = "critical"
  summary  = "IMDS: ${facts.imds}" # ERROR: Cannot include the given value in a string template
}
