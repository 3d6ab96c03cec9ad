package imdsmend

import (
	"embed"
	"io/fs"
)

// DefaultFleetPolicy is the repository's fleet.hcl, the policy of `imdsmend fleet` when
// /etc/imdsmend/fleet.hcl is absent.
//
//go:embed fleet.hcl
var DefaultFleetPolicy []byte

//go:embed fleettests
var fleetTests embed.FS

// FleetPolicyTests holds the tests of DefaultFleetPolicy: fleettests/*_test.hcl.
func FleetPolicyTests() fs.FS {
	sub, err := fs.Sub(fleetTests, "fleettests")
	if err != nil {
		panic(err) // the directory is embedded above; Sub fails only on a bad name
	}
	return sub
}
