# Every error is reported at once, not only the first.
rule "a" {
  when     = facts.imds.clas == "timeout" # ERROR: Did you mean "class"?
  severity = "critical"
  summary  = "a"
}

rule "b" {
  when     = facts.route.tpye == "blackhole" # ERROR: Did you mean "type"?
  severity = "severe" # ERROR: severity must be one of
  summary  = "b"
}
