rule "imds_down" {
  when     = facts.imds.class == "timeout"
  severity = "critical"
  summary  = facts.imds # ERROR: summary must be a string, but this is a object
}
