# Modifying a rule (a block without when) is for drop-ins; the main policy defines rules in full.
rule "imds_down" { # ERROR: Rule "imds_down" has no when
  enabled = false
}
