// Package imdsmend embeds the default policy so the binary works without /etc/imdsmend.
package imdsmend

import _ "embed"

// DefaultPolicy is the repository's policy.hcl, used when /etc/imdsmend/policy.hcl is absent.
//
//go:embed policy.hcl
var DefaultPolicy []byte
