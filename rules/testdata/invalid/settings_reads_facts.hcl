settings {
  ipv6 = facts.imds.reachable # ERROR: ipv6 is a fixed value; it cannot read facts
}
