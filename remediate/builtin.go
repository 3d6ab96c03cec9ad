package remediate

// builtinFixers lists every fixer shipped with imdsmend. Registration is explicit so a
// reader sees all kinds in one place.
func builtinFixers() []Fixer {
	return []Fixer{FirewallDelete{}, RouteRestore{}, NoProxy{}, RestartUnit{}}
}
