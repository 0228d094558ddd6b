package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

// Attach implements runtime.Runtime.
func (r *Runtime) Attach(ctx context.Context, id string, opts runtime.AttachOptions) error {
	ci, err := r.c.ContainerInspect(ctx, id)
	if err != nil {
		return wrap(err, "attach to "+id)
	}
	if ci.State == nil || !ci.State.Running {
		return fmt.Errorf("attach to %s: %w", id, runtime.ErrNotRunning)
	}
	withStdin := opts.Stdin != nil && ci.Config != nil && ci.Config.OpenStdin
	hj, err := r.c.ContainerAttach(ctx, id, container.AttachOptions{
		Stream: true, Stdin: withStdin, Stdout: true, Stderr: true,
	})
	if err != nil {
		return wrap(err, "attach to "+id)
	}
	defer hj.Close()
	stop := context.AfterFunc(ctx, func() { hj.Close() })
	defer stop()

	tty := ci.Config != nil && ci.Config.Tty
	if tty && opts.Resize != nil {
		ended := make(chan struct{})
		defer close(ended)
		go r.resize(ctx, id, opts.Resize, ended)
	}
	switch {
	case withStdin:
		// The client's stdin ending leaves the process's stdin open and
		// the output flowing, as for a Kubernetes container without
		// stdinOnce: Docker ends the whole attachment on CloseWrite unless
		// the container has StdinOnce.
		stdinOnce := ci.Config.StdinOnce
		go func() {
			_, _ = io.Copy(hj.Conn, opts.Stdin)
			if stdinOnce {
				_ = hj.CloseWrite()
			}
		}()
	case opts.Stdin != nil:
		// The container keeps no stdin open: discard what the client types,
		// or its stream blocks behind input nobody reads (kubectl attach -i
		// to a container without stdin: true).
		go func() { _, _ = io.Copy(io.Discard, opts.Stdin) }()
	}
	stdout, stderr := orDiscard(opts.Stdout), orDiscard(opts.Stderr)
	if tty {
		_, err = io.Copy(stdout, hj.Reader)
	} else {
		_, err = stdcopy.StdCopy(stdout, stderr, hj.Reader)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("attach to %s: %w", id, err)
	}
	return nil
}

// resize forwards terminal sizes to a container's TTY until sizes is
// closed or ended is.
func (r *Runtime) resize(ctx context.Context, id string, sizes <-chan runtime.TermSize, ended <-chan struct{}) {
	for {
		select {
		case size, ok := <-sizes:
			if !ok {
				return
			}
			_ = r.c.ContainerResize(ctx, id, container.ResizeOptions{Width: size.Width, Height: size.Height})
		case <-ended:
			return
		}
	}
}

// Stats implements runtime.Runtime.
func (r *Runtime) Stats(ctx context.Context, id string) (runtime.ContainerStats, error) {
	ci, err := r.c.ContainerInspect(ctx, id)
	if err != nil {
		return runtime.ContainerStats{}, wrap(err, "stats of "+id)
	}
	if ci.State == nil || !ci.State.Running {
		return runtime.ContainerStats{}, fmt.Errorf("stats of %s: %w", id, runtime.ErrNotRunning)
	}
	resp, err := r.c.ContainerStatsOneShot(ctx, id)
	if err != nil {
		return runtime.ContainerStats{}, wrap(err, "stats of "+id)
	}
	defer resp.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return runtime.ContainerStats{}, fmt.Errorf("stats of %s: decode: %w", id, err)
	}
	return statsFrom(s), nil
}

// statsFrom converts Docker's sample; the working set is computed as the
// kubelet (cAdvisor) does: usage less inactive file pages, floored at 0.
func statsFrom(s container.StatsResponse) runtime.ContainerStats {
	usage := s.MemoryStats.Usage
	inactive, ok := s.MemoryStats.Stats["inactive_file"] // cgroup v2
	if !ok {
		inactive = s.MemoryStats.Stats["total_inactive_file"] // cgroup v1
	}
	ws := uint64(0)
	if inactive < usage {
		ws = usage - inactive
	}
	return runtime.ContainerStats{
		Time:                  s.Read,
		CPUUsageNanoSeconds:   s.CPUStats.CPUUsage.TotalUsage,
		MemoryUsageBytes:      usage,
		MemoryWorkingSetBytes: ws,
	}
}
