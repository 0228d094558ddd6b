package prober

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/mizzen-dev/mizzen/internal/kubelet/envvar"
	"github.com/mizzen-dev/mizzen/internal/runtime"
)

// Exec runs cmd in the container id and succeeds when it exits 0. The
// output is its stdout then its stderr, at most 10 KiB. A command still
// running after timeout fails with `command "…" timed out`; a command that
// cannot be run at all is Unknown.
func Exec(ctx context.Context, rt runtime.Runtime, id string, cmd []string, timeout time.Duration) (Result, string) {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stdout, stderr limitedBuffer
	code, err := rt.Exec(tctx, id, runtime.ExecOptions{Cmd: cmd, Stdout: &stdout, Stderr: &stderr})
	out := stdout.String() + stderr.String()
	if len(out) > maxOutput {
		out = out[:maxOutput]
	}
	switch {
	case err != nil && ctx.Err() == nil && errors.Is(tctx.Err(), context.DeadlineExceeded):
		return Failure, fmt.Sprintf("command %q timed out", strings.Join(cmd, " "))
	case err != nil:
		return Unknown, err.Error()
	case code != 0:
		return Failure, out
	}
	return Success, out
}

// expandCommand applies $(VAR) expansion with the container's static env
// values only (the prober has no access to values from references), as
// the kubelet does for exec probes.
func expandCommand(cmd []string, c *corev1.Container) []string {
	var env []string
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env = append(env, e.Name+"="+e.Value)
		}
	}
	return envvar.Expand(cmd, env)
}

// limitedBuffer keeps the first maxOutput bytes written to it and drops
// the rest without failing the writer.
type limitedBuffer struct {
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string { return b.buf.String() }
