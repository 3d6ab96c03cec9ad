rule "imds_down" {
  when     = facts.imds.class == "timeout"
  severity = "critical"
  summary  = "IMDS is down"

  remediate "reboot_instance" { # ERROR: "reboot_instance" is not a remediation kind.
  }
}
