package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/imdsmend/imdsmend"
)

// Binaries are the programs the test beds run, built once per process.
type Binaries struct {
	Imdsmend string // the binary under test
	Imdssim  string // the fault-injecting IMDS simulator
	AEMM     string // upstream amazon-ec2-metadata-mock
}

var (
	buildOnce sync.Once
	built     Binaries
	buildErr  error
)

// Build compiles the binaries into dir (once per process; later calls return the first
// result). IMDSMEND_BIN, if set, names a prebuilt imdsmend to test instead.
func Build(dir string) (Binaries, error) {
	buildOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		built = Binaries{
			Imdsmend: filepath.Join(dir, "imdsmend"),
			Imdssim:  filepath.Join(dir, "imdssim"),
			AEMM:     filepath.Join(dir, "ec2-metadata-mock"),
		}
		if bin := os.Getenv("IMDSMEND_BIN"); bin != "" {
			built.Imdsmend = bin
		}
		targets := map[string]string{
			built.Imdssim: "./tests/imdssim",
			built.AEMM:    "github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock",
		}
		if os.Getenv("IMDSMEND_BIN") == "" {
			targets[built.Imdsmend] = "./cmd/imdsmend"
		}
		for out, pkg := range targets {
			cmd := exec.Command("go", "build", "-o", out, pkg)
			cmd.Dir = root
			if b, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
				return
			}
		}
	})
	return built, buildErr
}

// moduleRoot finds the directory holding go.mod, from the working directory upwards.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// WritePolicy writes the policy a test bed runs imdsmend with into dir and returns the main
// file: the built-in policy, so an /etc/imdsmend on this machine takes no part, and a
// drop-in that turns proxy_leak off. That rule reads the host's own files and every
// process's environment, which no network namespace hides: the proxy of the shell that
// ran the tests would be a finding, and apply would edit the host's /etc/environment.
// The proxy tests run imdsmend on --root trees instead.
func WritePolicy(dir string) (string, error) {
	policy := filepath.Join(dir, "policy.hcl")
	dropIns := filepath.Join(dir, "policy.d")
	if err := os.MkdirAll(dropIns, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(policy, imdsmend.DefaultPolicy, 0o644); err != nil {
		return "", err
	}
	noProxies := "rule \"proxy_leak\" {\n  enabled = false\n}\n"
	if err := os.WriteFile(filepath.Join(dropIns, "10-no-host-proxies.hcl"), []byte(noProxies), 0o644); err != nil {
		return "", err
	}
	return policy, nil
}
