rule "imds_down" {
  when    = facts.imds.class == "timeout"
  sevrity = "critical" # ERROR: Valid arguments here: enabled, evidence, hint, severity, summary, when.
  summary = "IMDS is down"
}
