package prober

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/mizzen-dev/mizzen/internal/runtime"
	"github.com/mizzen-dev/mizzen/internal/runtime/docker"
	"github.com/mizzen-dev/mizzen/internal/runtime/runtimetest"
)

// TestExecProbesUnderDocker runs exec probes in a real busybox container:
// the output, a failure's exit code and the timeout as Docker gives them.
func TestExecProbesUnderDocker(t *testing.T) {
	const host = "unix:///var/run/docker.sock"
	if out, err := exec.Command("docker", "-H", host, "info").CombinedOutput(); err != nil {
		runtimetest.SkipOrFail(t, "docker info: %v: %s", err, out)
	}
	rt, err := docker.New(docker.Config{Host: host})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	image := runtimetest.EnsureBusybox(t, rt)
	ctx := t.Context()
	node := fmt.Sprintf("prober-test-%d", os.Getpid())
	ref := runtime.PodRef{UID: node, Name: "p", Namespace: "ns"}
	sb, err := rt.CreateSandbox(ctx, runtime.SandboxSpec{Node: node, Pod: ref, Image: image, Command: []string{"sleep", "3600"}, Hostname: "p"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.RemoveContainer(context.Background(), sb) })
	if err := rt.StartContainer(ctx, sb); err != nil {
		t.Fatal(err)
	}
	app, err := rt.CreateContainer(ctx, runtime.ContainerSpec{Node: node, Pod: ref, SandboxID: sb, Name: "app", Image: image,
		Command: []string{"sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.RemoveContainer(context.Background(), app) })
	if err := rt.StartContainer(ctx, app); err != nil {
		t.Fatal(err)
	}

	pod := testPod(nil, nil, nil)
	for _, tc := range []struct {
		cmd  []string
		want Result
		out  string
	}{
		{[]string{"sh", "-c", "echo ok"}, Success, "ok\n"},
		{[]string{"sh", "-c", "echo out; echo err >&2; exit 3"}, Failure, "out\nerr\n"},
		{[]string{"sleep", "30"}, Failure, `command "sleep 30" timed out`},
	} {
		p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: tc.cmd}}, TimeoutSeconds: 1}
		start := time.Now()
		got, out := Run(ctx, rt, p, Target{Pod: pod, Container: "app", ContainerID: app})
		if got != tc.want || out != tc.out {
			t.Errorf("%q: %v, %q; want %v, %q", tc.cmd, got, out, tc.want, tc.out)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%q took %v", tc.cmd, d)
		}
	}
}
