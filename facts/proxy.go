package facts

// Proxy lists where proxy settings are found and whether each bypasses IMDS.
type Proxy struct {
	Sources []ProxySource `cty:"sources" json:"sources" doc:"Every place that sets a proxy variable."`
}

// ProxySource is one file or process environment that sets a proxy.
type ProxySource struct {
	Kind     string `cty:"kind" json:"kind" doc:"environment_file, profile, systemd_manager, systemd_unit, docker or process."`
	Path     string `cty:"path" json:"path" doc:"The file (as on the system, without --root), or /proc/PID/environ."`
	Unit     string `cty:"unit" json:"unit" doc:"systemd unit the setting applies to, if any."`
	Proxy    string `cty:"proxy" json:"proxy" doc:"The proxy URL with any password removed."`
	NoProxy  string `cty:"no_proxy" json:"no_proxy" doc:"The effective no_proxy value."`
	Bypassed bool   `cty:"bypassed" json:"bypassed" doc:"169.254.169.254 (and fd00:ec2::254 when IPv6 is on) is excluded from the proxy."`
}
