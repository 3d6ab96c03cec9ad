rule "odd_endpoint" {
  when     = regex("[", facts.imds.endpoint) != "" # ERROR: invalid regexp pattern: missing closing ]
  severity = "info"
  summary  = "odd endpoint"
}
