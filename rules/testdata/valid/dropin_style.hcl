# Attribute values may be any constant expression; a rule may be defined disabled.
settings {
  mode = "enforce"
  allow {
    ec2_api = false
  }
}

rule "imds_throttled" {
  when     = facts.imds.class == "http_429"
  severity = "warning"
  summary  = "IMDS throttles this instance"
  enabled  = false
}
