package remediate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/zclconf/go-cty/cty"
)

// KindCloudInitRerun is the remediation kind of CloudInitRerun.
const KindCloudInitRerun = "cloud_init_rerun"

// rerunMarker, in the state directory, records the boot a rerun was started from: a rerun
// that misses the metadata again must not reboot the instance in a loop.
const rerunMarker = "cloud-init-rerun"

// CloudInitRerun reruns cloud-init from scratch (cloud-init clean --logs --reboot) after it
// fell back to DataSourceNone, so user-data runs. It reboots the instance, so it needs its
// own permission, reboot, and runs only when this run's facts show IMDS healthy: rebooting
// into the same blocker would change nothing. It reruns once per instance; the marker in
// the state directory must be removed to allow another.
type CloudInitRerun struct {
	// Run runs cloud-init with args. Nil runs paths.CloudInit, and only when --root is
	// "/": a rerun reboots the running system, not another tree.
	Run func(ctx context.Context, args ...string) error
}

// Kind implements Fixer.
func (CloudInitRerun) Kind() string { return KindCloudInitRerun }

// Doc implements Fixer.
func (CloudInitRerun) Doc() string {
	return "rerun cloud-init from scratch once IMDS is healthy (cloud-init clean --logs --reboot): reboots the instance"
}

// Permission implements Fixer.
func (CloudInitRerun) Permission() types.Permission { return types.PermReboot }

// Spec implements Fixer: the block takes no arguments.
func (CloudInitRerun) Spec() hcldec.Spec { return &hcldec.ObjectSpec{} }

var rerunArgs = []string{"clean", "--logs", "--reboot"}

// Plan implements Fixer. It skips, with the reason, while IMDS is not healthy in this
// run's facts and after an earlier rerun.
func (CloudInitRerun) Plan(_ context.Context, env *Env, _ cty.Value) ([]*Change, error) {
	c := &Change{Target: "cloud-init", Detail: "cloud-init clean --logs --reboot: cloud-init missed its metadata this boot; the instance reboots and cloud-init runs again from scratch, user-data included"}
	f := env.Facts
	switch {
	case f == nil || f.IMDS == nil || !f.IMDS.Reachable:
		c.Status, c.Error = types.StatusSkipped, "not rerun: IMDS is not healthy in this run; a reboot now would miss the metadata again (the next run reruns cloud-init once IMDS answers)"
	case f.CloudInit == nil || !f.CloudInit.Ran || !f.CloudInit.Finished:
		c.Status, c.Error = types.StatusSkipped, "not rerun: cloud-init has not finished in this boot"
	default:
		prev, err := env.Paths.ReadFile(markerPath(env))
		switch {
		case err == nil:
			c.Status, c.Error = types.StatusSkipped, fmt.Sprintf("not rerun: imdsmend already reran cloud-init (from boot %s) and it missed the metadata again; find why (cloud-init status --long), then remove %s to allow another rerun", strings.TrimSpace(string(prev)), env.Paths.State(rerunMarker))
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("cloud_init_rerun: read %s: %w", rerunMarker, err)
		}
	}
	return []*Change{c}, nil
}

// Apply implements Fixer. The marker is written first: once cloud-init reboots, nothing
// after it runs.
func (r CloudInitRerun) Apply(ctx context.Context, env *Env, c *Change) error {
	run := r.Run
	if run == nil {
		if env.Paths.Root != "/" {
			return fmt.Errorf("not rerun: --root %s is not the running system; run cloud-init clean --logs --reboot there", env.Paths.Root)
		}
		run = func(ctx context.Context, args ...string) error { return runTool(ctx, paths.CloudInit, args...) }
	}
	boot := "unknown"
	if env.Facts != nil && env.Facts.CloudInit != nil && env.Facts.CloudInit.BootID != "" {
		boot = env.Facts.CloudInit.BootID
	}
	if err := env.Paths.MkdirAll(env.Paths.StateDir, 0o755); err != nil {
		return fmt.Errorf("not rerun: %w", err)
	}
	if err := env.Paths.WriteFile(markerPath(env), []byte(boot+"\n"), 0o644); err != nil {
		return fmt.Errorf("not rerun: record the rerun: %w", err)
	}
	if err := run(ctx, rerunArgs...); err != nil {
		// Not rerun: the next run may try again.
		if rmErr := os.Remove(env.Paths.State(rerunMarker)); rmErr != nil {
			err = errors.Join(err, rmErr)
		}
		return fmt.Errorf("not rerun: %w", err)
	}
	return nil
}

// markerPath is the marker inside --root.
func markerPath(env *Env) string { return path.Join(env.Paths.StateDir, rerunMarker) }

// Undo implements Fixer. Nothing can be undone: cloud-init's cleaned state and logs are
// gone and the reboot has happened.
func (CloudInitRerun) Undo(_ context.Context, _ *Env, c *Change) error {
	c.Detail = "nothing to revert: cloud-init clean --logs --reboot can't be undone (its former state and logs are deleted, and the instance rebooted)"
	return nil
}

// Observe implements Fixer. A rerun leaves no trace but the marker, and undo has nothing
// to revert either way: it is taken as made.
func (CloudInitRerun) Observe(context.Context, *Env, *Change) (bool, error) { return true, nil }
