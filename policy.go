// Package imdsmend embeds the default policy and its tests so the binary works without
// /etc/imdsmend and can check its own policy (`imdsmend test`).
package imdsmend

import (
	"embed"
	"io/fs"
)

// DefaultPolicy is the repository's policy.hcl, used when /etc/imdsmend/policy.hcl is absent.
//
//go:embed policy.hcl
var DefaultPolicy []byte

//go:embed policytests
var policyTests embed.FS

// PolicyTests holds the tests of DefaultPolicy: policytests/*_test.hcl and the facts
// files they load.
func PolicyTests() fs.FS {
	sub, err := fs.Sub(policyTests, "policytests")
	if err != nil {
		panic(err) // the directory is embedded above; Sub fails only on a bad name
	}
	return sub
}
