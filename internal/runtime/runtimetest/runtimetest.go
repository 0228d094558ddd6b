// Package runtimetest is the contract suite every runtime.Runtime passes:
// the fake in unit tests and Docker against the real daemon, so the fake
// the kubelet's tests rely on behaves like the real thing.
package runtimetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

// Run runs the contract suite against runtimes made by newRuntime (one per
// subtest). Everything a subtest creates is labelled with a node name of
// its own and removed when it ends.
func Run(t *testing.T, newRuntime func(t *testing.T) runtime.Runtime) {
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"Version", testVersion},
		{"Images", testImages},
		{"NotFound", testNotFound},
		{"PodLifecycle", testPodLifecycle},
		{"StopTimeout", testStopTimeout},
		{"SandboxRules", testSandboxRules},
		{"ExitCodeAndAttempt", testExitCodeAndAttempt},
		{"CommandAndArgs", testCommandAndArgs},
		{"Logs", testLogs},
		{"LogsFollowCancel", testLogsFollowCancel},
		{"Exec", testExec},
		{"ListByLabels", testListByLabels},
		{"HostNetwork", testHostNetwork},
		{"Attach", testAttach},
		{"Stats", testStats},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newEnv(t, newRuntime(t)))
		})
	}
}

// env is one subtest's runtime, node name and image.
type env struct {
	rt    runtime.Runtime
	node  string
	image string
	ctx   context.Context
}

func newEnv(t *testing.T, rt runtime.Runtime) *env {
	e := &env{rt: rt, node: "rtt-" + randomName(), image: EnsureBusybox(t, rt)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	e.ctx = ctx
	t.Cleanup(func() { e.cleanup(t, e.node) })
	return e
}

// cleanup removes every container labelled with node.
func (e *env) cleanup(t *testing.T, node string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := e.rt.ListContainers(ctx, runtime.ListFilter{Node: node})
	if err != nil {
		t.Errorf("cleanup: list: %v", err)
		return
	}
	for _, c := range list {
		if err := e.rt.RemoveContainer(ctx, c.ID); err != nil {
			t.Errorf("cleanup: remove %s: %v", c.ID, err)
		}
	}
}

func randomName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// pod returns a PodRef with a fresh UID.
func pod(name string) runtime.PodRef {
	return runtime.PodRef{UID: "uid-" + randomName(), Name: name, Namespace: "default"}
}

// waitSandbox is a sandbox command that exits 0 on SIGTERM at once.
var waitSandbox = []string{"sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"}

// startSandbox creates and starts a sandbox on e.node.
func (e *env) startSandbox(t *testing.T, p runtime.PodRef, hostname string, hostNetwork bool) string {
	t.Helper()
	id, err := e.rt.CreateSandbox(e.ctx, runtime.SandboxSpec{
		Node: e.node, Pod: p, Image: e.image, Command: waitSandbox, Hostname: hostname, HostNetwork: hostNetwork,
	})
	if err != nil {
		t.Fatalf("create sandbox: %v", err)
	}
	if err := e.rt.StartContainer(e.ctx, id); err != nil {
		t.Fatalf("start sandbox: %v", err)
	}
	return id
}

// startContainer creates and starts an app container running argv.
func (e *env) startContainer(t *testing.T, p runtime.PodRef, sandbox, name string, attempt int, argv ...string) string {
	t.Helper()
	id, err := e.rt.CreateContainer(e.ctx, runtime.ContainerSpec{
		Node: e.node, Pod: p, SandboxID: sandbox, Name: name, Attempt: attempt, Image: e.image, Command: argv,
		Labels: map[string]string{"test.mizzen.io/extra": "yes"},
	})
	if err != nil {
		t.Fatalf("create container %s: %v", name, err)
	}
	if err := e.rt.StartContainer(e.ctx, id); err != nil {
		t.Fatalf("start container %s: %v", name, err)
	}
	return id
}

// inspect fails the test when id cannot be inspected.
func (e *env) inspect(t *testing.T, id string) runtime.ContainerStatus {
	t.Helper()
	st, err := e.rt.InspectContainer(e.ctx, id)
	if err != nil {
		t.Fatalf("inspect %s: %v", id, err)
	}
	return st
}

// waitExited waits until id has exited and returns its status.
func (e *env) waitExited(t *testing.T, id string) runtime.ContainerStatus {
	t.Helper()
	var st runtime.ContainerStatus
	waitFor(t, 30*time.Second, "container exited", func() bool {
		st = e.inspect(t, id)
		return st.State == runtime.StateExited
	})
	return st
}

// logs returns a container's stdout and stderr.
func (e *env) logs(t *testing.T, id string, opts runtime.LogOptions) (string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := e.rt.Logs(e.ctx, id, opts, &stdout, &stderr); err != nil {
		t.Fatalf("logs %s: %v", id, err)
	}
	return stdout.String(), stderr.String()
}

// exec runs argv in id and returns its exit code and output.
func (e *env) exec(t *testing.T, id, stdin string, argv ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	opts := runtime.ExecOptions{Cmd: argv, Stdout: &stdout, Stderr: &stderr}
	if stdin != "" {
		opts.Stdin = strings.NewReader(stdin)
	}
	code, err := e.rt.Exec(e.ctx, id, opts)
	if err != nil {
		t.Fatalf("exec %v in %s: %v", argv, id, err)
	}
	return code, stdout.String(), stderr.String()
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu  sync.Mutex // guards b
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
