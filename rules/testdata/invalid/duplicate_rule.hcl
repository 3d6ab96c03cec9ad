rule "imds_down" {
  when     = facts.imds.class == "timeout"
  severity = "critical"
  summary  = "IMDS is down"
}

rule "imds_down" { # ERROR: Rule "imds_down" is already defined in this file at
  when     = facts.imds.class == "connection_refused"
  severity = "critical"
  summary  = "IMDS refuses connections"
}
