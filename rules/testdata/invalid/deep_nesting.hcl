# Nesting deep enough to exhaust the parser's stack is refused before parsing.
rule "deep" {
  when     = ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((facts.imds.reachable)))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))) # ERROR: Expressions and blocks may nest at most 64 levels deep.
  severity = "info"
  summary  = "deep"
}
