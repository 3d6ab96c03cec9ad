rule "imds_down" {
  when     = facts.imds.class == "timeout"
  severity = "high" # ERROR: severity must be one of "info", "warning", "critical", not "high"
  summary  = "IMDS is down"
}
