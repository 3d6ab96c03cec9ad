// Package identity finds the instance's ID and region without IMDS, which may be what is
// broken, from what the instance keeps locally: the DMI asset tag (Nitro), cloud-init's
// reports, the package manager's region variable, the environment and the policy; and
// from IMDS when it answered. Each value says where it came from, and a cloud-init cache
// left over from the image the instance was baked from is named as stale.
package identity

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"

	"github.com/imdsmend/imdsmend/internal/paths"
)

// Where the values are kept.
const (
	// DMIAssetTag holds the instance ID on Nitro instances.
	DMIAssetTag = "/sys/devices/virtual/dmi/id/board_asset_tag"
	// InstanceData is cloud-init's report of this boot (/run is a tmpfs).
	InstanceData = "/run/cloud-init/instance-data.json"
	// CloudInitCache is cloud-init's record of the last instance it ran on; it survives
	// into an image baked from an instance.
	CloudInitCache = "/var/lib/cloud/data/instance-id"
	DnfRegion      = "/etc/dnf/vars/awsregion"
	YumRegion      = "/etc/yum/vars/awsregion"
	// RegionEnv is the SDK's region variable.
	RegionEnv = "AWS_REGION"
)

// Source names, as facts.identity.*_source shows them.
const (
	SourceIMDS       = "imds"
	SourceDMI        = "dmi"
	SourceCloudInit  = "cloud_init"
	SourceCache      = "cloud_init_cache"
	SourceEnv        = "env"
	SourcePolicy     = "policy"
	SourceDnfVars    = "dnf_vars"
	SourceYumVars    = "yum_vars"
	FieldInstanceID  = "instance_id"
	FieldRegion      = "region"
	defaultRegionVar = "default"
)

// Identity is facts.identity.
type Identity struct {
	InstanceID       string   `cty:"instance_id" json:"instance_id" doc:"The instance ID, from the first source that has one (imds, policy, dmi, cloud_init, cloud_init_cache); empty when none has."`
	InstanceIDSource string   `cty:"instance_id_source" json:"instance_id_source" doc:"Where instance_id came from: imds, policy (settings.ec2.instance_id), dmi (the Nitro asset tag), cloud_init (this boot's instance-data.json) or cloud_init_cache (/var/lib/cloud/data/instance-id)."`
	Region           string   `cty:"region" json:"region" doc:"The region, from the first source that has one (policy, env, cloud_init, dnf_vars, yum_vars); empty when none has."`
	RegionSource     string   `cty:"region_source" json:"region_source" doc:"Where region came from: policy (settings.ec2.region), env (AWS_REGION), cloud_init, dnf_vars (/etc/dnf/vars/awsregion) or yum_vars."`
	StaleCache       bool     `cty:"stale_cache" json:"stale_cache" doc:"cloud-init's /var/lib/cloud/data/instance-id names another instance than a current source does: it was baked into the image, and cloud-init has not run for this instance."`
	Verified         bool     `cty:"verified" json:"verified" doc:"instance_id comes from, or agrees with, a source other than the cache (imds, policy, dmi, cloud_init); false when only the cache, which can be stale, names it."`
	Sources          []Value  `cty:"sources" json:"sources" doc:"Every value found, with its source and file, including those that disagree with the chosen ones."`
	Notes            []string `cty:"notes" json:"notes" doc:"What is odd about the sources: a stale cache, sources that disagree, unreadable files."`
	// readNotes are the notes of reading, kept when choose runs again.
	readNotes []string
}

// Value is one value one source gave.
type Value struct {
	Field  string `cty:"field" json:"field" doc:"instance_id or region."`
	Value  string `cty:"value" json:"value" doc:"What the source says."`
	Source string `cty:"source" json:"source" doc:"The source's name (see instance_id_source and region_source)."`
	Path   string `cty:"path" json:"path" doc:"The file or variable it was read from."`
}

// Config is what Read looks at beyond files.
type Config struct {
	Paths paths.Paths
	// Getenv reads the environment (os.Getenv).
	Getenv func(string) string
	// PolicyRegion and PolicyInstanceID are settings.ec2.region and .instance_id.
	PolicyRegion     string
	PolicyInstanceID string
	// IMDSInstanceID is the ID IMDS answered with this run, empty when it did not.
	IMDSInstanceID string
}

// AddIMDS adds the ID IMDS answered with, which comes before every other source: the
// probes run side by side, so the hub adds it once both are in.
func (id *Identity) AddIMDS(instanceID string) {
	if !ValidInstanceID(instanceID) {
		return
	}
	id.Sources = append([]Value{{Field: FieldInstanceID, Value: instanceID, Source: SourceIMDS, Path: imdsPath}}, id.Sources...)
	id.choose()
}

const imdsPath = "http://169.254.169.254/latest/meta-data/instance-id"

var (
	instanceIDRe = regexp.MustCompile(`^i-[0-9a-f]{8}([0-9a-f]{9})?$`)
	regionRe     = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
)

// ValidInstanceID and ValidRegion tell a value from placeholders such as
// "iid-datasource-none" or "default".
func ValidInstanceID(s string) bool { return instanceIDRe.MatchString(s) }
func ValidRegion(s string) bool     { return regionRe.MatchString(s) }

// Read gathers the values. Missing files are no error; an unreadable or malformed one is
// noted and skipped, so one bad source does not hide the others.
func Read(cfg Config) *Identity {
	id := &Identity{Sources: []Value{}, Notes: []string{}}
	add := func(field, value, source, path string) {
		id.Sources = append(id.Sources, Value{Field: field, Value: value, Source: source, Path: path})
	}
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	// Instance ID: this boot's sources first, the cache last.
	if ValidInstanceID(cfg.IMDSInstanceID) {
		add(FieldInstanceID, cfg.IMDSInstanceID, SourceIMDS, imdsPath)
	}
	if ValidInstanceID(cfg.PolicyInstanceID) {
		add(FieldInstanceID, cfg.PolicyInstanceID, SourcePolicy, "settings.ec2.instance_id")
	}
	if v := id.file(cfg.Paths, DMIAssetTag); ValidInstanceID(v) {
		add(FieldInstanceID, v, SourceDMI, DMIAssetTag)
	}
	runID, runRegion := id.instanceData(cfg.Paths)
	if ValidInstanceID(runID) {
		add(FieldInstanceID, runID, SourceCloudInit, InstanceData)
	}
	if v := id.file(cfg.Paths, CloudInitCache); ValidInstanceID(v) {
		add(FieldInstanceID, v, SourceCache, CloudInitCache)
	}
	// Region: what the administrator set first, then this boot's, then the image's.
	if ValidRegion(cfg.PolicyRegion) {
		add(FieldRegion, cfg.PolicyRegion, SourcePolicy, "settings.ec2.region")
	}
	if v := getenv(RegionEnv); ValidRegion(v) {
		add(FieldRegion, v, SourceEnv, RegionEnv)
	}
	if ValidRegion(runRegion) {
		add(FieldRegion, runRegion, SourceCloudInit, InstanceData)
	}
	for _, f := range []struct{ path, source string }{{DnfRegion, SourceDnfVars}, {YumRegion, SourceYumVars}} {
		// "default" is what the image says when it does not know.
		if v := id.file(cfg.Paths, f.path); v != defaultRegionVar && ValidRegion(v) {
			add(FieldRegion, v, f.source, f.path)
		}
	}
	id.readNotes = id.Notes
	id.choose()
	return id
}

// choose picks the first value of each field and judges the cache against the others.
func (id *Identity) choose() {
	id.InstanceID, id.InstanceIDSource, id.Region, id.RegionSource = "", "", "", ""
	id.StaleCache, id.Notes = false, append([]string{}, id.readNotes...)
	var current, cached string
	for _, v := range id.Sources {
		switch v.Field {
		case FieldInstanceID:
			if id.InstanceID == "" {
				id.InstanceID, id.InstanceIDSource = v.Value, v.Source
			}
			if v.Source == SourceCache {
				cached = v.Value
			} else if current == "" {
				current = v.Value
			}
			if v.Value != id.InstanceID && v.Source != SourceCache {
				id.Notes = append(id.Notes, fmt.Sprintf("%s says instance %s, %s says %s", v.Source, v.Value, id.InstanceIDSource, id.InstanceID))
			}
		case FieldRegion:
			if id.Region == "" {
				id.Region, id.RegionSource = v.Value, v.Source
			} else if v.Value != id.Region {
				id.Notes = append(id.Notes, fmt.Sprintf("%s says region %s, %s says %s: %s is used", v.Source, v.Value, id.RegionSource, id.Region, id.Region))
			}
		}
	}
	id.Verified = current != ""
	if cached != "" && current != "" && cached != current {
		id.StaleCache = true
		id.Notes = append(id.Notes, fmt.Sprintf("%s names %s, not this instance (%s): it came with the image this instance was baked from, and cloud-init has not run for this instance", CloudInitCache, cached, current))
	}
	if cached != "" && current == "" {
		id.Notes = append(id.Notes, fmt.Sprintf("only %s names the instance (%s); it may be stale if the image was baked from another instance", CloudInitCache, cached))
	}
}

// file reads a one-line file; "" when it is missing, noted when unreadable.
func (id *Identity) file(p paths.Paths, path string) string {
	data, err := p.ReadFile(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			id.Notes = append(id.Notes, fmt.Sprintf("read %s: %v", path, err))
		}
		return ""
	}
	return strings.TrimSpace(string(data))
}

// instanceData reads v1.instance_id and v1.region of cloud-init's instance-data.json.
func (id *Identity) instanceData(p paths.Paths) (instanceID, region string) {
	data, err := p.ReadFile(InstanceData)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			id.Notes = append(id.Notes, fmt.Sprintf("read %s: %v", InstanceData, err))
		}
		return "", ""
	}
	var d struct {
		V1 struct {
			InstanceID string `json:"instance_id"`
			Region     string `json:"region"`
		} `json:"v1"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		id.Notes = append(id.Notes, fmt.Sprintf("%s is not JSON: %v", InstanceData, err))
		return "", ""
	}
	return d.V1.InstanceID, d.V1.Region
}
