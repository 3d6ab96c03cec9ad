rule "imds_down" {
  when     = contain(["timeout"], facts.imds.class) # ERROR: There is no function named "contain"
  severity = "critical"
  summary  = "IMDS is down"
}
