settings {
  nic_interval = "0s" # ERROR: nic_interval must be a positive duration
}

rule "x" {
  when     = facts.imds.class != "ok"
  severity = "warning"
  summary  = "x"
}
