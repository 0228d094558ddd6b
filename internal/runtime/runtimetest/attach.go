package runtimetest

import (
	"errors"
	"strings"
	"testing"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

func testAttach(t *testing.T, e *env) {
	p := pod("attach")
	sb := e.startSandbox(t, p, "attach", false)
	// Output comes after a pause, so the attachment sees it live.
	app := e.startContainer(t, p, sb, "app", 0, "sh", "-c", "sleep 2; echo hello; echo oops >&2; exit 0")
	var stdout, stderr lockedBuffer
	err := e.rt.Attach(e.ctx, app, runtime.AttachOptions{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	if stdout.String() != "hello\n" || stderr.String() != "oops\n" {
		t.Errorf("attach output %q %q, want hello and oops", stdout.String(), stderr.String())
	}
	e.waitExited(t, app)
	if err := e.rt.Attach(e.ctx, app, runtime.AttachOptions{}); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("attach to an exited container: %v, want ErrNotRunning", err)
	}
}

func testStats(t *testing.T, e *env) {
	p := pod("stats")
	sb := e.startSandbox(t, p, "stats", false)
	app := e.startContainer(t, p, sb, "app", 0, "sh", "-c", "echo busy; trap 'exit 0' TERM; sleep 3600 & wait")
	s, err := e.rt.Stats(e.ctx, app)
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	if s.Time.IsZero() || s.CPUUsageNanoSeconds == 0 || s.MemoryUsageBytes == 0 {
		t.Errorf("stats %+v: want a time, CPU and memory usage", s)
	}
	if s.MemoryWorkingSetBytes > s.MemoryUsageBytes {
		t.Errorf("working set %d exceeds usage %d", s.MemoryWorkingSetBytes, s.MemoryUsageBytes)
	}
	done := e.startContainer(t, p, sb, "done", 0, "true")
	e.waitExited(t, done)
	if _, err := e.rt.Stats(e.ctx, done); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("stats of an exited container: %v, want ErrNotRunning", err)
	}
	if _, err := e.rt.Stats(e.ctx, "nonexistent0123"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("stats of an absent container: %v, want ErrNotFound", err)
	}
}
