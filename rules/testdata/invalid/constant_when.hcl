rule "always" {
  when     = true # ERROR: This condition reads no facts
  severity = "info"
  summary  = "always fires"
}
