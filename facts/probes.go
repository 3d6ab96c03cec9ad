package facts

// DefaultProbes are the probes every run gathers, in no particular order (they run
// concurrently).
func DefaultProbes() []Probe {
	return []Probe{IMDSProbe{}, FirewallProbe{}, RouteProbe{}, ProxyProbe{}}
}
