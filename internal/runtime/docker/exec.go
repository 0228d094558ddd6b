package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

// Exec implements runtime.Runtime.
func (r *Runtime) Exec(ctx context.Context, id string, opts runtime.ExecOptions) (int, error) {
	created, err := r.c.ContainerExecCreate(ctx, id, container.ExecOptions{
		Cmd: opts.Cmd, Env: opts.Env, Tty: opts.TTY,
		AttachStdin: opts.Stdin != nil, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		if strings.Contains(err.Error(), "is not running") {
			return -1, fmt.Errorf("exec in %s: %w", id, runtime.ErrNotRunning)
		}
		return -1, wrap(err, "exec in "+id)
	}
	hj, err := r.c.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{Tty: opts.TTY})
	if err != nil {
		return -1, wrap(err, "exec attach "+id)
	}
	defer hj.Close()
	stop := context.AfterFunc(ctx, func() { hj.Close() })
	defer stop()

	if opts.TTY && opts.Resize != nil {
		ended := make(chan struct{})
		defer close(ended)
		go func() {
			for {
				select {
				case size, ok := <-opts.Resize:
					if !ok {
						return
					}
					_ = r.c.ContainerExecResize(ctx, created.ID, container.ResizeOptions{Width: size.Width, Height: size.Height})
				case <-ended:
					return
				}
			}
		}()
	}
	if opts.Stdin != nil {
		go func() {
			_, _ = io.Copy(hj.Conn, opts.Stdin)
			_ = hj.CloseWrite()
		}()
	}
	stdout, stderr := orDiscard(opts.Stdout), orDiscard(opts.Stderr)
	if opts.TTY {
		_, err = io.Copy(stdout, hj.Reader)
	} else {
		_, err = stdcopy.StdCopy(stdout, stderr, hj.Reader)
	}
	if ctx.Err() != nil {
		return -1, ctx.Err()
	}
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	// The output ends when the process does; the daemon records the exit
	// code a moment later.
	for {
		ins, err := r.c.ContainerExecInspect(ctx, created.ID)
		if err != nil {
			return -1, wrap(err, "exec inspect "+id)
		}
		if !ins.Running {
			return ins.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Logs implements runtime.Runtime.
func (r *Runtime) Logs(ctx context.Context, id string, opts runtime.LogOptions, stdout, stderr io.Writer) error {
	ci, err := r.c.ContainerInspect(ctx, id)
	if err != nil {
		return wrap(err, "logs of "+id)
	}
	lo := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: opts.Follow, Timestamps: opts.Timestamps, Tail: "all"}
	if opts.TailLines >= 0 {
		lo.Tail = strconv.Itoa(opts.TailLines)
	}
	if !opts.Since.IsZero() {
		lo.Since = fmt.Sprintf("%d.%09d", opts.Since.Unix(), opts.Since.Nanosecond())
	}
	body, err := r.c.ContainerLogs(ctx, id, lo)
	if err != nil {
		return wrap(err, "logs of "+id)
	}
	defer body.Close()
	stop := context.AfterFunc(ctx, func() { body.Close() })
	defer stop()
	stdout, stderr = orDiscard(stdout), orDiscard(stderr)
	if ci.Config != nil && ci.Config.Tty {
		_, err = io.Copy(stdout, body)
	} else {
		_, err = stdcopy.StdCopy(stdout, stderr, body)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("logs of %s: %w", id, err)
	}
	return nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
