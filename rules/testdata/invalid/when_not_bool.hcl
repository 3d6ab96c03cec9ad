rule "imds_class" {
  when     = facts.imds.class # ERROR: when must be a bool (true or false), but this is a string
  severity = "info"
  summary  = "class"
}
