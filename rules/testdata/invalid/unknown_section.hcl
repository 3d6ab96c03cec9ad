rule "imds_down" {
  when     = facts.imd.class == "timeout" # ERROR: facts has: callers, cloud_init, containers, ec2, firewall, identity, imds, imds_ipv6, nic, probes, proxy, route
  severity = "critical"
  summary  = "IMDS is down"
}
