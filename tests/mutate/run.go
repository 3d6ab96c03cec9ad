package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// sandboxScript runs a test binary as root with no way out: lo is the only network
// interface of a fresh namespace (so no iptables, nft or route change reaches the host),
// and / is remounted read-only in a private mount namespace (so no write reaches /etc or
// the state directory) except the work directory, which holds TMPDIR.
const sandboxScript = `set -e
ip link set lo up
mount --bind "$1" "$1"
mount -o remount,bind,ro /
cd "$2"
shift 2
exec "$@"`

type runner struct {
	root    string
	work    string // scratch: overlay, mutated file, test binary, TMPDIR
	timeout time.Duration
	max     int // compiling mutants to test per package; 0 for all
	sandbox bool
	verbose bool
}

func newRunner(root string, o options) (*runner, error) {
	work, err := os.MkdirTemp("", "imdsmend-mutate-")
	if err != nil {
		return nil, fmt.Errorf("make work directory: %w", err)
	}
	return &runner{root: root, work: work, timeout: o.timeout, max: o.max, sandbox: o.sandbox && os.Geteuid() == 0, verbose: o.verbose}, nil
}

func (r *runner) close() { _ = os.RemoveAll(r.work) }

func (r *runner) log(w io.Writer, outcome string, m Mutant) {
	if r.verbose {
		fmt.Fprintf(w, "mutate: %s %s\n", outcome, m)
	}
}

// testPackage checks that the package's tests pass unmutated, then tries its mutants in
// order until all are tried or -max of them compiled.
func (r *runner) testPackage(p pkg, progress io.Writer, survived func(Mutant)) (pkgResult, error) {
	res := pkgResult{Dir: p.dir, Total: len(p.mutants), Survived: []Mutant{}}
	bin := filepath.Join(r.work, "pkg.test")
	if out, err := r.build(p.dir, bin, ""); err != nil {
		return res, fmt.Errorf("build %s tests unmutated: %w\n%s", p.dir, err, out)
	}
	if out, err := r.test(p.dir, bin); err != nil {
		return res, fmt.Errorf("%s tests fail unmutated (fix that first): %w\n%s", p.dir, err, out)
	}
	limit := len(p.mutants)
	if r.max > 0 {
		limit = r.max
	}
	fmt.Fprintf(progress, "mutate: %s: %d mutants, testing %d\n", p.dir, len(p.mutants), min(limit, len(p.mutants)))
	tried := 0
	for _, m := range p.mutants {
		if tried == limit {
			break
		}
		overlay, err := r.writeOverlay(m)
		if err != nil {
			return res, err
		}
		if _, err := r.build(p.dir, bin, overlay); err != nil {
			res.Discarded++
			r.log(progress, "discarded", m)
			continue
		}
		tried++
		out, err := r.test(p.dir, bin)
		switch {
		case err == nil:
			res.Survived = append(res.Survived, m)
			survived(m)
			r.log(progress, "survived", m)
		case errors.Is(err, context.DeadlineExceeded) || bytes.Contains(out, []byte("panic: test timed out")):
			res.Killed++
			res.TimedOut++
			r.log(progress, "timed out", m)
		default:
			res.Killed++
			r.log(progress, "killed", m)
		}
	}
	return res, nil
}

// writeOverlay writes the mutated file and the overlay that swaps it in for the real one.
func (r *runner) writeOverlay(m Mutant) (string, error) {
	orig := filepath.Join(r.root, m.File)
	src, err := os.ReadFile(orig)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", m.File, err)
	}
	mutated := filepath.Join(r.work, "mutant_"+filepath.Base(m.File))
	if err := os.WriteFile(mutated, m.Apply(src), 0o644); err != nil {
		return "", fmt.Errorf("write mutant: %w", err)
	}
	overlay, err := json.Marshal(map[string]map[string]string{"Replace": {orig: mutated}})
	if err != nil {
		return "", fmt.Errorf("encode overlay: %w", err)
	}
	path := filepath.Join(r.work, "overlay.json")
	if err := os.WriteFile(path, overlay, 0o644); err != nil {
		return "", fmt.Errorf("write overlay: %w", err)
	}
	return path, nil
}

// build compiles the package's test binary, through the overlay if one is given.
func (r *runner) build(dir, bin, overlay string) ([]byte, error) {
	// -vet=off: a mutant counts as killed only by a test, and vet would double each build.
	args := []string{"test", "-c", "-vet=off", "-o", bin}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	cmd := exec.Command("go", append(args, "./"+dir)...)
	cmd.Dir = r.root
	return cmd.CombinedOutput()
}

// test runs the test binary in the package directory, as `go test` would.
func (r *runner) test(dir, bin string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout+10*time.Second)
	defer cancel()
	args := []string{bin, "-test.count=1", "-test.failfast", "-test.timeout=" + r.timeout.String()}
	pkgDir := filepath.Join(r.root, dir)
	var cmd *exec.Cmd
	if r.sandbox {
		cmd = exec.CommandContext(ctx, "unshare", append([]string{"--net", "--mount", "--propagation", "private", "--", "sh", "-c", sandboxScript, "sh", r.work, pkgDir}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, bin, args[1:]...)
		cmd.Dir = pkgDir
	}
	// IMDS only ever on loopback port 1, whatever a mutant does to a test's endpoint.
	cmd.Env = append(os.Environ(), "TMPDIR="+r.work, "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1")
	cmd.WaitDelay = 5 * time.Second // a child left holding the output must not hang the run
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return out, fmt.Errorf("test run: %w", ctx.Err())
	}
	return out, err
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run mutate inside the imdsmend module")
	}
	return filepath.Dir(gomod), nil
}
