settings {
  interval = "5 minutes" # ERROR: interval must be a positive duration
}
