settings {
  allow {
    firewal = true # ERROR: Valid arguments here: ec2_api, files, firewall, restart_units, routes.
  }
}
