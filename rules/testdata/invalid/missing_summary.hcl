rule "imds_down" { # ERROR: Rule "imds_down" has no summary
  when     = facts.imds.class == "timeout"
  severity = "critical"
}
