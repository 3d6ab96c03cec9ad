// Package cloudinit reads how this boot's cloud-init went: which datasource it ended on,
// its errors, and whether the Ec2 datasource was configured. cloud-init falls back to
// DataSourceNone when IMDS is blocked at boot and still reports "done", so user-data
// silently never runs; this section makes that visible.
package cloudinit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/imdsmend/imdsmend/internal/paths"
)

// Where cloud-init reports (/run/cloud-init is a tmpfs: what is there is this boot's,
// its status.json and result.json link to /var/lib/cloud/data) and is configured.
const (
	RunDir      = "/run/cloud-init"
	ConfigFile  = "/etc/cloud/cloud.cfg"
	ConfigDir   = "/etc/cloud/cloud.cfg.d"
	procStat    = "/proc/stat"
	procBootID  = "/proc/sys/kernel/random/boot_id"
	datasources = "datasource_list"
)

// stages are cloud-init's stages in the order they run (cmd/main.py status_wrapper).
var stages = []string{"init-local", "init", "modules-init", "modules-config", "modules-final"}

// CloudInit is facts.cloud_init.
type CloudInit struct {
	Installed      bool     `cty:"installed" json:"installed" doc:"cloud-init is installed (its configuration or its /run/cloud-init reports exist); false leaves every other field empty."`
	Ran            bool     `cty:"ran" json:"ran" doc:"cloud-init started in this boot (/run/cloud-init/status.json exists and, when the kernel's boot time is readable, its first stage started after it)."`
	Finished       bool     `cty:"finished" json:"finished" doc:"All its stages finished in this boot (result.json is written after modules-final)."`
	Stage          string   `cty:"stage" json:"stage" doc:"The stage running now (init-local, init, modules-config, …); empty when none is."`
	Datasource     string   `cty:"datasource" json:"datasource" doc:"The datasource cloud-init ended on, as it names it (DataSourceEc2Local, DataSourceNone); empty before it found one."`
	DatasourceName string   `cty:"datasource_name" json:"datasource_name" doc:"datasource without the DataSource prefix and the Local suffix: Ec2, None, …"`
	Errors         []string `cty:"errors" json:"errors" doc:"Errors cloud-init recorded in this boot's stages."`
	CloudName      string   `cty:"cloud_name" json:"cloud_name" doc:"v1.cloud_name of instance-data.json (aws on EC2, none after the fallback); empty when the file is absent."`
	DatasourceList []string `cty:"datasource_list" json:"datasource_list" doc:"datasource_list from /etc/cloud/cloud.cfg and cloud.cfg.d/*.cfg (the last file that sets it wins); empty when unset, which means cloud-init's built-in list."`
	Ec2Configured  bool     `cty:"ec2_configured" json:"ec2_configured" doc:"The Ec2 datasource is among those cloud-init may use: datasource_list names Ec2, or is unset (the built-in list holds Ec2)."`
	BootID         string   `cty:"boot_id" json:"boot_id" doc:"This boot's ID (/proc/sys/kernel/random/boot_id), to tell boots apart in reports; cloud-init records none, so ran compares its start with the kernel's boot time instead."`
}

// status is the shape of status.json ("v1": datasource, stage, and one entry per stage).
type status struct {
	V1 map[string]json.RawMessage `json:"v1"`
}

type stageStatus struct {
	Errors []string `json:"errors"`
	Start  *float64 `json:"start"`
}

// result is the shape of result.json, written when modules-final ends.
type result struct {
	V1 struct {
		Datasource *string  `json:"datasource"`
		Errors     []string `json:"errors"`
	} `json:"v1"`
}

// Read gathers the section from the files under p.Root. Missing files mean cloud-init is
// not installed or did not run; a file that is there but unreadable or malformed fails the
// probe, so rules on it become undecided rather than quiet.
func Read(p paths.Paths) (*CloudInit, error) {
	c := &CloudInit{}
	list, set, cfgFound, err := datasourceList(p)
	if err != nil {
		return nil, err
	}
	c.DatasourceList = list
	c.Ec2Configured = !set || slices.Contains(list, "Ec2")
	st, err := readOptional(p, path.Join(RunDir, "status.json"))
	if err != nil {
		return nil, err
	}
	c.Installed = cfgFound || st != nil
	if !c.Installed {
		return &CloudInit{}, nil
	}
	if id, err := readOptional(p, procBootID); err == nil && id != nil {
		c.BootID = strings.TrimSpace(string(id))
	}
	if st == nil {
		return c, nil
	}
	start, err := ParseStatus(st, c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path.Join(RunDir, "status.json"), err)
	}
	// /run is a tmpfs, so its reports are this boot's; a /run kept across boots (or a
	// --root tree) shows itself by a start before the kernel booted.
	c.Ran = true
	if btime, ok := bootTime(p); ok && start != nil && *start < btime {
		return &CloudInit{Installed: true, DatasourceList: c.DatasourceList, Ec2Configured: c.Ec2Configured, BootID: c.BootID}, nil
	}
	res, err := readOptional(p, path.Join(RunDir, "result.json"))
	if err != nil {
		return nil, err
	}
	if res != nil {
		if err := ParseResult(res, c); err != nil {
			return nil, fmt.Errorf("%s: %w", path.Join(RunDir, "result.json"), err)
		}
	}
	data, err := readOptional(p, path.Join(RunDir, "instance-data.json"))
	if err != nil {
		return nil, err
	}
	if data != nil {
		var d struct {
			V1 struct {
				CloudName string `json:"cloud_name"`
			} `json:"v1"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			return nil, fmt.Errorf("%s: %w", path.Join(RunDir, "instance-data.json"), err)
		}
		c.CloudName = d.V1.CloudName
	}
	return c, nil
}

// ParseStatus fills c from status.json and returns when its first stage started (nil when
// none has).
func ParseStatus(data []byte, c *CloudInit) (*float64, error) {
	var s status
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("parse status: %w", err)
	}
	if s.V1 == nil {
		return nil, errors.New("parse status: no v1 object")
	}
	var ds, stage *string
	for key, dst := range map[string]**string{"datasource": &ds, "stage": &stage} {
		if raw, ok := s.V1[key]; ok {
			if err := json.Unmarshal(raw, dst); err != nil {
				return nil, fmt.Errorf("parse status: v1.%s: %w", key, err)
			}
		}
	}
	if ds != nil {
		c.setDatasource(*ds)
	}
	if stage != nil {
		c.Stage = *stage
	}
	var first *float64
	c.Errors = nil // nil when there are none, as when there is no status
	for _, name := range stages {
		raw, ok := s.V1[name]
		if !ok || bytes.Equal(raw, []byte("null")) {
			continue
		}
		var ss stageStatus
		if err := json.Unmarshal(raw, &ss); err != nil {
			return nil, fmt.Errorf("parse status: v1.%s: %w", name, err)
		}
		c.Errors = append(c.Errors, ss.Errors...)
		if ss.Start != nil && (first == nil || *ss.Start < *first) {
			first = ss.Start
		}
	}
	return first, nil
}

// ParseResult fills c from result.json: cloud-init finished, on this datasource.
func ParseResult(data []byte, c *CloudInit) error {
	var r result
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("parse result: %w", err)
	}
	c.Finished = true
	if r.V1.Datasource != nil {
		c.setDatasource(*r.V1.Datasource)
	}
	if r.V1.Errors != nil { // all stages' errors, as status.json has them
		c.Errors = append([]string(nil), r.V1.Errors...)
	}
	return nil
}

func (c *CloudInit) setDatasource(ds string) {
	c.Datasource = ds
	// "DataSourceEc2Local", or with details after a space in other versions.
	name, _, _ := strings.Cut(strings.TrimSpace(ds), " ")
	name = strings.TrimPrefix(name, "DataSource")
	if name != "Local" {
		name = strings.TrimSuffix(name, "Local")
	}
	c.DatasourceName = name
}

// datasourceList reads datasource_list from cloud.cfg and then cloud.cfg.d/*.cfg in lexical
// order, as cloud-init merges them: the last file that sets it wins. found says whether any
// configuration exists.
func datasourceList(p paths.Paths) (list []string, set, found bool, err error) {
	files := []string{ConfigFile}
	entries, err := os.ReadDir(p.File(ConfigDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, false, false, fmt.Errorf("read %s: %w", ConfigDir, err)
	}
	for _, e := range entries { // ReadDir sorts by name
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".cfg") {
			files = append(files, path.Join(ConfigDir, e.Name()))
		}
	}
	for _, f := range files {
		data, err := readOptional(p, f)
		if err != nil {
			return nil, false, false, err
		}
		if data == nil {
			continue
		}
		found = true
		l, ok, err := ParseDatasourceList(data)
		if err != nil {
			return nil, false, false, fmt.Errorf("%s: %w", f, err)
		}
		if ok {
			list, set = l, true
		}
	}
	return list, set, found, nil
}

// ParseDatasourceList reads datasource_list from one cloud-config file; ok is false when
// the file does not set it. cloud-init accepts a list or a comma-separated string.
func ParseDatasourceList(data []byte) (list []string, ok bool, err error) {
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, false, fmt.Errorf("parse cloud-config: %w", err)
	}
	n, ok := doc[datasources]
	if !ok {
		return nil, false, nil
	}
	switch n.Kind {
	case yaml.SequenceNode:
		if err := n.Decode(&list); err != nil {
			return nil, false, fmt.Errorf("parse cloud-config: %s: %w", datasources, err)
		}
	case yaml.ScalarNode:
		for _, s := range strings.Split(n.Value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
	default:
		return nil, false, fmt.Errorf("parse cloud-config: %s is neither a list nor a string", datasources)
	}
	for i, s := range list {
		list[i] = strings.TrimSpace(s)
	}
	return list, true, nil
}

// readOptional reads abs under p.Root; a missing file is nil, no error.
func readOptional(p paths.Paths, abs string) ([]byte, error) {
	data, err := p.ReadFile(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", abs, err)
	}
	return data, nil
}

// bootTime is the kernel's boot time in seconds since the epoch (btime in /proc/stat).
func bootTime(p paths.Paths) (float64, bool) {
	data, err := readOptional(p, procStat)
	if err != nil || data == nil {
		return 0, false
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return float64(n), err == nil
		}
	}
	return 0, false
}
