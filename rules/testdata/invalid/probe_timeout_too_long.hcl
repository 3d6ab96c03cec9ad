settings {
  interval      = "10s"
  probe_timeout = "30s" # ERROR: probe_timeout (30s) must be shorter than interval (10s)
}
