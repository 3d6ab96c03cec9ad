package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/imdsmend/imdsmend/internal/flock"
)

// Lock takes the run lock at path, waiting until ctx ends, so one run at a time changes
// the system. The returned function releases it.
func Lock(ctx context.Context, path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create lock directory: %w", err)
	}
	unlock, err := flock.Lock(ctx, path)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("another imdsmend run holds %s: %w", path, err)
	}
	return unlock, err
}
