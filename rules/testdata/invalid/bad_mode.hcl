settings {
  mode = "dry-run" # ERROR: mode must be one of "enforce", "report", not "dry-run"
}
