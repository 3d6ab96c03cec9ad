# can() and try() turn errors into values, but a misspelt fact is still a mistake.
rule "client_error" {
  when     = can(regex("^http_4", facts.imds.clas)) # ERROR: Did you mean "class"?
  severity = "warning"
  summary  = "client error"
}
