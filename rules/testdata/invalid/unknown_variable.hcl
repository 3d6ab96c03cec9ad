rule "imds_down" {
  when     = fact.imds.class == "timeout" # ERROR: Did you mean "facts"?
  severity = "critical"
  summary  = "IMDS is down"
}
