settings {
  imds {
    attempts = 100 # ERROR: attempts must be a whole number from 1 to 10, not 100
  }
}
