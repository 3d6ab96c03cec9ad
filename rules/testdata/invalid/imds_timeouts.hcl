settings {
  probe_timeout = "2s"
  imds {
    connect_timeout = "5s" # ERROR: imds.connect_timeout (5s) must not exceed probe_timeout (2s)
  }
}
