settings {
  allow {
    firewal = true # ERROR: Valid arguments here: ec2_api, files, firewall, reboot, restart_units, routes.
  }
}
