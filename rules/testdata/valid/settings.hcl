# Every setting, with values other than the defaults.
settings {
  mode          = "report"
  interval      = "1m"
  probe_timeout = "3s"
  ipv6          = true

  imds {
    connect_timeout = "500ms"
    header_timeout  = "1s"
    attempts        = 4
  }

  allow {
    firewall      = true
    files         = true
    ec2_api       = false
    routes        = true
    restart_units = false
  }
}
