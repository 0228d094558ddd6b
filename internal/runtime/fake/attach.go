package fake

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

// fakeMemoryBytes is the memory usage the fake reports for every running
// container, of which fakeInactiveFileBytes is inactive file cache.
const (
	fakeMemoryBytes       = 4 << 20
	fakeInactiveFileBytes = 1 << 20
)

// Attach implements runtime.Runtime. The fake's processes read no stdin
// once started, so opts.Stdin is drained and discarded.
func (r *Runtime) Attach(ctx context.Context, id string, opts runtime.AttachOptions) error {
	r.mu.Lock()
	err := r.record("Attach", id)
	c, gerr := r.get(id)
	running := gerr == nil && c.proc != nil
	r.mu.Unlock()
	switch {
	case err != nil:
		return err
	case gerr != nil:
		return gerr
	case !running:
		return fmt.Errorf("attach to %s: %w", id, runtime.ErrNotRunning)
	}
	if opts.Stdin != nil {
		go func() { _, _ = io.Copy(io.Discard, opts.Stdin) }()
	}
	stdout, stderr := orDiscard(opts.Stdout), orDiscard(opts.Stderr)
	if opts.TTY {
		stderr = stdout
	}
	r.mu.Lock()
	next := len(c.logs)
	for {
		for ; next < len(c.logs); next++ {
			l := c.logs[next]
			r.mu.Unlock()
			w := stdout
			if l.stderr {
				w = stderr
			}
			_, _ = io.WriteString(w, l.text)
			r.mu.Lock()
		}
		if c.proc == nil {
			r.mu.Unlock()
			return nil
		}
		ch := c.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		r.mu.Lock()
	}
}

// Stats implements runtime.Runtime: CPU time grows at a tenth of a core
// since the container started, and memory is a constant.
func (r *Runtime) Stats(ctx context.Context, id string) (runtime.ContainerStats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.record("Stats", id); err != nil {
		return runtime.ContainerStats{}, err
	}
	c, err := r.get(id)
	if err != nil {
		return runtime.ContainerStats{}, err
	}
	if c.proc == nil {
		return runtime.ContainerStats{}, fmt.Errorf("stats of %s: %w", id, runtime.ErrNotRunning)
	}
	now := time.Now()
	return runtime.ContainerStats{
		Time:                  now,
		CPUUsageNanoSeconds:   uint64(now.Sub(c.status.StartedAt)/10) + 1,
		MemoryUsageBytes:      fakeMemoryBytes,
		MemoryWorkingSetBytes: fakeMemoryBytes - fakeInactiveFileBytes,
	}, nil
}
