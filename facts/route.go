package facts

// Route is the kernel's route to 169.254.169.254.
type Route struct {
	Type      string `cty:"type" json:"type" doc:"unicast, local, blackhole, prohibit, unreachable or none."`
	Interface string `cty:"interface" json:"interface" doc:"Outgoing interface."`
	Gateway   string `cty:"gateway" json:"gateway" doc:"Next hop, empty when on-link."`
	OK        bool   `cty:"ok" json:"ok" doc:"IMDS traffic from root can leave by this route."`
}
