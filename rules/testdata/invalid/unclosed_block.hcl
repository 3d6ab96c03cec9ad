rule "imds_down" { # ERROR: There is no closing brace for this block
  when     = facts.imds.class == "timeout"
