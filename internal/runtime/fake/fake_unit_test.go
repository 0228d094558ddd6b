package fake_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mizzen-dev/mizzen/internal/runtime"
	"github.com/mizzen-dev/mizzen/internal/runtime/fake"
)

// started returns a fake with a running sandbox and app container.
func started(t *testing.T, argv ...string) (*fake.Runtime, string, string) {
	t.Helper()
	ctx := t.Context()
	rt := fake.New()
	if _, err := rt.ImportImage(ctx, bytes.NewReader(nil), "img", runtime.ImageConfig{}); err != nil {
		t.Fatal(err)
	}
	p := runtime.PodRef{UID: "u1", Name: "p", Namespace: "ns"}
	sb, err := rt.CreateSandbox(ctx, runtime.SandboxSpec{Node: "n", Pod: p, Image: "img", Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.StartContainer(ctx, sb); err != nil {
		t.Fatal(err)
	}
	app, err := rt.CreateContainer(ctx, runtime.ContainerSpec{Node: "n", Pod: p, SandboxID: sb, Name: "c", Image: "img", Command: argv})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.StartContainer(ctx, app); err != nil {
		t.Fatal(err)
	}
	return rt, sb, app
}

func TestExitScriptsACrash(t *testing.T) {
	rt, _, app := started(t, "sleep", "inf")
	if err := rt.Exit(app, 2); err != nil {
		t.Fatal(err)
	}
	st, err := rt.InspectContainer(t.Context(), app)
	if err != nil || st.State != runtime.StateExited || st.ExitCode != 2 {
		t.Errorf("after Exit: %+v, %v", st, err)
	}
}

func TestCallsAndFailNext(t *testing.T) {
	rt, _, app := started(t, "sleep", "inf")
	boom := errors.New("boom")
	rt.FailNext("StopContainer", boom)
	if err := rt.StopContainer(t.Context(), app, time.Second); !errors.Is(err, boom) {
		t.Errorf("scripted failure: %v", err)
	}
	if err := rt.StopContainer(t.Context(), app, 10*time.Millisecond); err != nil {
		t.Errorf("second stop: %v", err)
	}
	var methods []string
	for _, c := range rt.Calls() {
		methods = append(methods, c.Method)
	}
	want := []string{"ImportImage", "CreateSandbox", "StartContainer", "CreateContainer", "StartContainer", "StopContainer", "StopContainer"}
	if !slices.Equal(methods, want) {
		t.Errorf("calls = %v, want %v", methods, want)
	}
}

func TestExecHook(t *testing.T) {
	rt, _, app := started(t, "sleep", "inf")
	rt.ExecHook = func(id string, opts runtime.ExecOptions) (int, bool) {
		return 1, slices.Equal(opts.Cmd, []string{"probe"})
	}
	if code, err := rt.Exec(t.Context(), app, runtime.ExecOptions{Cmd: []string{"probe"}}); err != nil || code != 1 {
		t.Errorf("hooked exec = %d, %v", code, err)
	}
	if code, err := rt.Exec(t.Context(), app, runtime.ExecOptions{Cmd: []string{"true"}}); err != nil || code != 0 {
		t.Errorf("unhooked exec = %d, %v", code, err)
	}
}

func TestPullImage(t *testing.T) {
	rt := fake.New()
	ctx := context.Background()
	if _, err := rt.PullImage(ctx, "registry.example/app:v1", nil, nil); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("pull of an unknown image: %v", err)
	}
	rt.AddRegistryImage("registry.example/app:v1")
	var reports []runtime.PullProgress
	img, err := rt.PullImage(ctx, "registry.example/app:v1", &runtime.RegistryAuth{Username: "u"}, func(p runtime.PullProgress) { reports = append(reports, p) })
	if err != nil || !slices.Contains(img.Tags, "registry.example/app:v1") || len(reports) == 0 {
		t.Errorf("pull = %+v, %v, progress %v", img, err, reports)
	}
	if _, err := rt.ImageStatus(ctx, "registry.example/app:v1"); err != nil {
		t.Errorf("status after pull: %v", err)
	}
}
