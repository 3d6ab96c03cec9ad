rule "imds down" { # ERROR: Rule names start with a letter
  when     = facts.imds.class == "timeout"
  severity = "critical"
  summary  = "IMDS is down"
}
