rule "imds_down" {
  when     = facts.imds.class = "timeout" # ERROR: Missing newline after argument
  severity = "critical"
  summary  = "IMDS is down"
}
