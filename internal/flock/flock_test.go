package flock

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	unlock, err := Lock(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	// Held: a second taker gives up with its context's error.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Lock while held = %v, want the context's deadline", err)
	}
	// Released while a taker waits: it gets the lock.
	got := make(chan error, 1)
	go func() {
		u, err := Lock(context.Background(), path)
		if err == nil {
			u()
		}
		got <- err
	}()
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("Lock after release = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Lock did not take a released lock")
	}
	if _, err := Lock(context.Background(), filepath.Join(path, "not-a-dir")); err == nil {
		t.Error("Lock of a file under a regular file succeeded")
	}
}
