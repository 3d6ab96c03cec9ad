rule "imds_down" {
  when     = facts.imds.class == "timeout"
  severity = "critical"
  summary  = "IMDS is down"
  enabled  = "no" # ERROR: a bool is required
}
