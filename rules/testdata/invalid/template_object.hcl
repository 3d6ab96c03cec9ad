rule "imds_down" {
  when     = facts.imds.class == "timeout"
  severity = "critical"
  summary  = "IMDS: ${facts.imds}" # ERROR: A string template cannot include a value of type object
}
