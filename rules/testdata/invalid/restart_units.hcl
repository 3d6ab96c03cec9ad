settings {
  allow {
    restart_units = ["docker.service", "[bad"] # ERROR: Invalid restart_units
  }
}
