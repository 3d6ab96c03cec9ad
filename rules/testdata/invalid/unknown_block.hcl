rules "imds_down" { # ERROR: Valid blocks here: rule, settings.
}
