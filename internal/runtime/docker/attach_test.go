package docker_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mizzen-dev/mizzen/internal/runtime"
	"github.com/mizzen-dev/mizzen/internal/runtime/docker"
	"github.com/mizzen-dev/mizzen/internal/runtime/runtimetest"
)

// startApp starts a pod whose container app runs script, with stdin kept
// open when stdin is set.
func startApp(t *testing.T, rt *docker.Runtime, ctx context.Context, name, script string, stdin bool) string {
	t.Helper()
	image := runtimetest.EnsureBusybox(t, rt)
	node := "rtt-" + name + "-" + time.Now().Format("150405.000000")
	t.Cleanup(func() { removeAll(t, rt, node) })
	pod := runtime.PodRef{UID: "uid-" + name, Name: name, Namespace: "default"}
	sb, err := rt.CreateSandbox(ctx, runtime.SandboxSpec{Node: node, Pod: pod, Image: image, Hostname: name,
		Command: []string{"sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.StartContainer(ctx, sb); err != nil {
		t.Fatal(err)
	}
	app, err := rt.CreateContainer(ctx, runtime.ContainerSpec{Node: node, Pod: pod, SandboxID: sb, Name: "app", Image: image,
		Command: []string{"sh", "-c", script}, Stdin: stdin})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.StartContainer(ctx, app); err != nil {
		t.Fatal(err)
	}
	return app
}

// Stdin given to an attachment to a container without stdin is consumed
// and dropped: a writer blocked on it would stall the client's stream.
func TestAttachDrainsStdinOfContainerWithoutStdin(t *testing.T) {
	rt := newRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	app := startApp(t, rt, ctx, "nostdin", "trap 'exit 0' TERM; sleep 3600 & wait", false)
	pr, pw := io.Pipe()
	defer pw.Close()
	actx, acancel := context.WithCancel(ctx)
	defer acancel()
	done := make(chan error, 1)
	go func() {
		done <- rt.Attach(actx, app, runtime.AttachOptions{Stdin: pr, Stdout: io.Discard, Stderr: io.Discard})
	}()
	wrote := make(chan error, 1)
	go func() { _, err := pw.Write([]byte("typed into a container without stdin\n")); wrote <- err }()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("stdin written to the attachment is never read")
	}
	acancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("attach did not end with its context")
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The end of the client's stdin (printf … | kubectl attach -i) does not
// end the attachment: the answers to what it sent still arrive.
func TestAttachStreamsOutputAfterStdinEnds(t *testing.T) {
	rt := newRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	app := startApp(t, rt, ctx, "stdin", "while read l; do sleep 1; echo got $l; done; echo eof; sleep 3600", true)
	var out lockedBuffer
	actx, acancel := context.WithCancel(ctx)
	defer acancel()
	done := make(chan error, 1)
	go func() {
		done <- rt.Attach(actx, app, runtime.AttachOptions{Stdin: strings.NewReader("a\n"), Stdout: &out, Stderr: &out})
	}()
	deadline := time.After(20 * time.Second)
	for !strings.Contains(out.String(), "got a\n") {
		select {
		case err := <-done:
			t.Fatalf("attach ended (%v) before the answer to stdin, with output %q", err, out.String())
		case <-deadline:
			t.Fatalf("no answer to stdin: output %q", out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if strings.Contains(out.String(), "eof") {
		t.Errorf("the container's stdin was closed: %q", out.String())
	}
	acancel()
	<-done
}
