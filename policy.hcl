# imdsmend default policy. Copy to /etc/imdsmend/policy.hcl to change it, or add drop-ins
# in /etc/imdsmend/policy.d/*.hcl. The language is described in docs/policy.md and the
# facts rules can use in docs/facts.md.

settings {
  mode          = "enforce"
  interval      = "5m"
  probe_timeout = "2s"
  ipv6          = false

  # Local fixes are allowed; changing the instance through the EC2 API is not.
  allow {
    firewall = true
    files    = true
    ec2_api  = false
  }
}

rule "imds_endpoint_disabled" {
  # cloud-init reads a 403 on the token PUT as "HTTP endpoint is disabled".
  when     = facts.imds.stage == "token" && facts.imds.class == "http_403"
  severity = "critical"
  summary  = "IMDS refuses the token request with 403: the instance's HttpEndpoint is disabled"
  hint     = "enable it: aws ec2 modify-instance-metadata-options --instance-id ID --http-endpoint enabled"
}

rule "imds_throttled" {
  when     = facts.imds.class == "http_429"
  severity = "warning"
  summary  = "IMDS throttles this instance (HTTP 429 after ${facts.imds.attempts} attempts)"
  hint     = "find the process that polls IMDS too often; clients must cache credentials and back off"
}

rule "imds_unreachable" {
  when     = contains(["connection_refused", "timeout", "no_route", "proxy"], facts.imds.class)
  severity = "critical"
  summary  = "IMDS at ${facts.imds.endpoint} is unreachable: ${facts.imds.class}"
  hint     = "look for a firewall rule, route or proxy that stops traffic to 169.254.169.254 (imdsmend plan)"
}

rule "imds_http_error" {
  when     = !facts.imds.reachable && contains(["http_400", "http_401", "http_403", "http_404", "http_5xx", "bad_response"], facts.imds.class) && !(facts.imds.stage == "token" && facts.imds.class == "http_403")
  severity = "critical"
  summary  = "IMDS answers with an error: ${facts.imds.class} (HTTP ${facts.imds.status}) at the ${facts.imds.stage} step"
  hint     = "check the instance's metadata options and anything between this host and IMDS that rewrites requests"
}
