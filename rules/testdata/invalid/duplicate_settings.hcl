settings {
  mode = "report"
}

settings { # ERROR: A file may hold one settings block; this file already has one at
  ipv6 = true
}
