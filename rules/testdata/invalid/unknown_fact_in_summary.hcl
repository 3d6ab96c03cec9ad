rule "imds_down" {
  when     = facts.imds.class == "timeout"
  severity = "critical"
  summary  = "IMDS at ${facts.imds.endpiont} is down" # ERROR: Did you mean "endpoint"?
}
