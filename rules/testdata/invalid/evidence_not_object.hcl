rule "imds_down" {
  when     = facts.imds.class == "timeout"
  severity = "critical"
  summary  = "IMDS is down"
  evidence = facts.imds.class # ERROR: evidence must be an object
}
