package cloudinit

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/imdsmend/imdsmend/internal/paths"
)

// fixture names a file in testdata, to be placed at a path under the test's root.
type fixture struct{ at, from, text string }

func writeRoot(t *testing.T, files []fixture) paths.Paths {
	t.Helper()
	root := t.TempDir()
	for _, f := range files {
		data := []byte(f.text)
		if f.from != "" {
			var err error
			if data, err = os.ReadFile(filepath.Join("testdata", f.from)); err != nil {
				t.Fatal(err)
			}
		}
		dst := filepath.Join(root, f.at)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return paths.New(root)
}

const bootID = "0f6b1e9c-6f0e-4b8a-9a59-3d1b2c4e5f60\n"

func TestRead(t *testing.T) {
	debianCfg := []fixture{{at: ConfigFile, from: "cloud.cfg"}, {at: ConfigDir + "/90_dpkg.cfg", from: "90_dpkg.cfg"}}
	testCfg := append(debianCfg[:2:2], fixture{at: ConfigDir + "/99-imdsmend-test.cfg", from: "99-imdsmend-test.cfg"})
	thisBoot := []fixture{{at: procStat, text: "cpu  1 2 3\nbtime 1764566280\nprocesses 900\n"}, {at: procBootID, text: bootID}}
	run := func(status, result, data string) []fixture {
		f := []fixture{{at: RunDir + "/status.json", from: status}}
		if result != "" {
			f = append(f, fixture{at: RunDir + "/result.json", from: result})
		}
		if data != "" {
			f = append(f, fixture{at: RunDir + "/instance-data.json", from: data})
		}
		return f
	}
	cat := func(parts ...[]fixture) []fixture {
		var all []fixture
		for _, p := range parts {
			all = append(all, p...)
		}
		return all
	}
	testList := []string{"Ec2", "None"}
	tests := []struct {
		name  string
		files []fixture
		want  CloudInit
	}{
		{"not installed", nil, CloudInit{}},
		{"installed, not run (no /run reports)", cat(testCfg, thisBoot),
			CloudInit{Installed: true, DatasourceList: testList, Ec2Configured: true, BootID: "0f6b1e9c-6f0e-4b8a-9a59-3d1b2c4e5f60"}},
		{"fell back to DataSourceNone", cat(testCfg, thisBoot, run("status-none.json", "result-none.json", "instance-data-none.json")),
			CloudInit{Installed: true, Ran: true, Finished: true, Datasource: "DataSourceNone", DatasourceName: "None",
				CloudName: "none", DatasourceList: testList, Ec2Configured: true, BootID: "0f6b1e9c-6f0e-4b8a-9a59-3d1b2c4e5f60"}},
		{"found Ec2, a user-data script failed", cat(testCfg, thisBoot, run("status-ec2.json", "result-ec2.json", "instance-data-ec2.json")),
			CloudInit{Installed: true, Ran: true, Finished: true, Datasource: "DataSourceEc2Local", DatasourceName: "Ec2",
				Errors:    []string{"('scripts_user', RuntimeError('Runparts: 1 failures (part-001) in 1 attempted commands'))"},
				CloudName: "aws", DatasourceList: testList, Ec2Configured: true, BootID: "0f6b1e9c-6f0e-4b8a-9a59-3d1b2c4e5f60"}},
		{"still running init-local", cat(testCfg, thisBoot, run("status-running.json", "", "")),
			CloudInit{Installed: true, Ran: true, Stage: "init-local", DatasourceList: testList, Ec2Configured: true, BootID: "0f6b1e9c-6f0e-4b8a-9a59-3d1b2c4e5f60"}},
		{"Debian's packaged list holds Ec2", cat(debianCfg, run("status-none.json", "result-none.json", "")),
			CloudInit{Installed: true, Ran: true, Finished: true, Datasource: "DataSourceNone", DatasourceName: "None", Ec2Configured: true,
				DatasourceList: []string{"NoCloud", "ConfigDrive", "OpenNebula", "DigitalOcean", "Azure", "AltCloud", "OVF", "MAAS", "GCE", "OpenStack", "CloudSigma", "SmartOS", "Bigstep", "Scaleway", "AliYun", "Ec2", "CloudStack", "Hetzner", "IBMCloud", "Oracle", "Exoscale", "RbxCloud", "UpCloud", "VMware", "Vultr", "LXD", "NWCS", "None"}}},
		{"no datasource_list anywhere: the built-in list holds Ec2", cat([]fixture{{at: ConfigFile, from: "cloud.cfg"}}, run("status-none.json", "result-none.json", "")),
			CloudInit{Installed: true, Ran: true, Finished: true, Datasource: "DataSourceNone", DatasourceName: "None", Ec2Configured: true}},
		{"a later drop-in without Ec2 wins", cat(testCfg, []fixture{{at: ConfigDir + "/99z-nocloud.cfg", text: "datasource_list: NoCloud, None\n"}}, run("status-none.json", "result-none.json", "")),
			CloudInit{Installed: true, Ran: true, Finished: true, Datasource: "DataSourceNone", DatasourceName: "None", DatasourceList: []string{"NoCloud", "None"}}},
		{"a /run/cloud-init older than this boot is not this boot's", cat(testCfg, run("status-none.json", "result-none.json", ""),
			[]fixture{{at: procStat, text: "btime 1764570000\n"}, {at: procBootID, text: bootID}}),
			CloudInit{Installed: true, DatasourceList: testList, Ec2Configured: true, BootID: "0f6b1e9c-6f0e-4b8a-9a59-3d1b2c4e5f60"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Read(writeRoot(t, tt.files))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("Read:\n got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

// status.json is a relative link into /var/lib/cloud/data: it resolves inside --root.
func TestReadFollowsLinkInsideRoot(t *testing.T) {
	p := writeRoot(t, []fixture{{at: "/var/lib/cloud/data/status.json", from: "status-none.json"}, {at: "/var/lib/cloud/data/result.json", from: "result-none.json"}})
	if err := os.MkdirAll(p.File(RunDir), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"status.json", "result.json"} {
		if err := os.Symlink("../../var/lib/cloud/data/"+f, p.File(RunDir+"/"+f)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Finished || got.DatasourceName != "None" {
		t.Errorf("Read = %+v, want finished on None", *got)
	}
}

func TestReadBadInput(t *testing.T) {
	tests := []struct {
		name  string
		files []fixture
	}{
		{"status.json not JSON", []fixture{{at: RunDir + "/status.json", text: "{"}}},
		{"status.json without v1", []fixture{{at: RunDir + "/status.json", text: `{"v2": {}}`}}},
		{"a stage of the wrong type", []fixture{{at: RunDir + "/status.json", text: `{"v1": {"init": "x"}}`}}},
		{"result.json truncated", []fixture{{at: RunDir + "/status.json", from: "status-none.json"}, {at: RunDir + "/result.json", text: `{"v1": {"datasource": "DataSource`}}},
		{"cloud.cfg not YAML", []fixture{{at: ConfigFile, text: "datasource_list: [Ec2\n"}}},
		{"datasource_list a map", []fixture{{at: ConfigFile, text: "datasource_list: {Ec2: 1}\n"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := Read(writeRoot(t, tt.files)); err == nil {
				t.Errorf("Read = %+v, want an error", *got)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"status-none.json", "status-ec2.json", "status-running.json", "result-none.json", "result-ec2.json", "90_dpkg.cfg"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c CloudInit
		_, _ = ParseStatus(data, &c)
		_ = ParseResult(data, &c)
		if list, ok, err := ParseDatasourceList(data); err == nil && !ok && list != nil {
			t.Errorf("ParseDatasourceList: a list without ok: %q", list)
		}
	})
}
