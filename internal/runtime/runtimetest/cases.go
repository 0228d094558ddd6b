package runtimetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

func testVersion(t *testing.T, e *env) {
	v, err := e.rt.Version(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.Name == "" || v.Version == "" || strings.Contains(v.Version, "+") {
		t.Errorf("version = %+v, want a name and a plain version", v)
	}
	if got, want := v.String(), v.Name+"://"+v.Version; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func testImages(t *testing.T, e *env) {
	img, err := e.rt.ImageStatus(e.ctx, e.image)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(img.ID, "sha256:") || !slices.Contains(img.Tags, e.image) {
		t.Errorf("image status = %+v, want a sha256 ID and tag %s", img, e.image)
	}
	if _, err := e.rt.ImageStatus(e.ctx, "mizzen-test/absent-"+randomName()+":v1"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("status of an absent image: err = %v, want ErrNotFound", err)
	}

	rootfs, err := BusyboxRootfs()
	if err != nil {
		t.Fatal(err)
	}
	imported := "mizzen-test/import-" + randomName() + ":v1"
	img, err = e.rt.ImportImage(e.ctx, bytes.NewReader(rootfs), imported, runtime.ImageConfig{Cmd: []string{"sh"}})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if !slices.Contains(img.Tags, imported) {
		t.Errorf("imported image tags = %v, want %s", img.Tags, imported)
	}
	removeImage(t, e, imported)

	loaded := "mizzen-test/load-" + randomName() + ":v1"
	archive, err := ImageArchive(loaded)
	if err != nil {
		t.Fatal(err)
	}
	names, err := e.rt.LoadImages(e.ctx, bytes.NewReader(archive))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if !slices.Contains(names, loaded) {
		t.Errorf("loaded %v, want %s", names, loaded)
	}
	if _, err := e.rt.ImageStatus(e.ctx, loaded); err != nil {
		t.Errorf("status of a loaded image: %v", err)
	}
	removeImage(t, e, loaded)

	// A registry on a closed loopback port: the pull fails, and fast.
	if _, err := e.rt.PullImage(e.ctx, "127.0.0.1:1/mizzen-test/absent:v1", nil, func(runtime.PullProgress) {}); err == nil {
		t.Errorf("pull from a closed port succeeded")
	}
}

func removeImage(t *testing.T, e *env, ref string) {
	t.Helper()
	if err := e.rt.RemoveImage(e.ctx, ref); err != nil {
		t.Errorf("remove image %s: %v", ref, err)
	}
	if _, err := e.rt.ImageStatus(e.ctx, ref); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("status after remove: err = %v, want ErrNotFound", err)
	}
	if err := e.rt.RemoveImage(e.ctx, ref); err != nil {
		t.Errorf("removing an absent image: %v", err)
	}
}

func testNotFound(t *testing.T, e *env) {
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if _, err := e.rt.InspectContainer(e.ctx, id); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("inspect: err = %v, want ErrNotFound", err)
	}
	if err := e.rt.StartContainer(e.ctx, id); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("start: err = %v, want ErrNotFound", err)
	}
	if err := e.rt.StopContainer(e.ctx, id, time.Second); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("stop: err = %v, want ErrNotFound", err)
	}
	if _, err := e.rt.Exec(e.ctx, id, runtime.ExecOptions{Cmd: []string{"true"}}); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("exec: err = %v, want ErrNotFound", err)
	}
	if err := e.rt.Logs(e.ctx, id, runtime.LogOptions{TailLines: -1}, nil, nil); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("logs: err = %v, want ErrNotFound", err)
	}
	if err := e.rt.RemoveContainer(e.ctx, id); err != nil {
		t.Errorf("remove: %v, want nil for an absent container", err)
	}
	_, err := e.rt.CreateSandbox(e.ctx, runtime.SandboxSpec{Node: e.node, Pod: pod("noimage"), Image: "mizzen-test/absent-" + randomName() + ":v1"})
	if !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("create with an absent image: err = %v, want ErrNotFound", err)
	}
}

func testPodLifecycle(t *testing.T, e *env) {
	p := pod("web")
	sb := e.startSandbox(t, p, "web-host", false)
	st := e.inspect(t, sb)
	if st.State != runtime.StateRunning || st.PID <= 0 || st.StartedAt.IsZero() || !st.FinishedAt.IsZero() {
		t.Errorf("sandbox status = %+v, want running with a PID and a start time", st)
	}
	want := runtime.Meta{Node: e.node, Kind: runtime.KindSandbox, Pod: p}
	if st.Meta != want {
		t.Errorf("sandbox meta = %+v, want %+v", st.Meta, want)
	}

	app := e.startContainer(t, p, sb, "app", 0, "sh", "-c", "echo hello; echo oops >&2; hostname; trap 'exit 0' TERM; sleep 3600 & wait")
	st = e.inspect(t, app)
	if st.State != runtime.StateRunning || st.Image != e.image || !strings.HasPrefix(st.ImageID, "sha256:") {
		t.Errorf("app status = %+v, want running %s", st, e.image)
	}
	want = runtime.Meta{Node: e.node, Kind: runtime.KindContainer, Pod: p, SandboxID: sb, Name: "app"}
	if st.Meta != want || st.Labels["test.mizzen.io/extra"] != "yes" {
		t.Errorf("app meta = %+v labels %v, want %+v and the extra label", st.Meta, st.Labels, want)
	}
	var stdout, stderr string
	waitFor(t, 10*time.Second, "the app's output", func() bool {
		stdout, stderr = e.logs(t, app, runtime.LogOptions{TailLines: -1})
		return strings.Count(stdout, "\n") >= 2 && stderr != ""
	})
	if stdout != "hello\nweb-host\n" || stderr != "oops\n" {
		t.Errorf("logs = %q, %q; want the app's output with the pod's hostname", stdout, stderr)
	}

	start := time.Now()
	if err := e.rt.StopContainer(e.ctx, app, 10*time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopping a container that exits on SIGTERM took %v", d)
	}
	st = e.inspect(t, app)
	if st.State != runtime.StateExited || st.ExitCode != 0 || st.PID != 0 || st.FinishedAt.Before(st.StartedAt) {
		t.Errorf("stopped app = %+v, want exited 0 with times in order", st)
	}
	if err := e.rt.StopContainer(e.ctx, app, time.Second); err != nil {
		t.Errorf("stopping a stopped container: %v", err)
	}
	if _, err := e.rt.Exec(e.ctx, app, runtime.ExecOptions{Cmd: []string{"true"}}); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("exec in a stopped container: err = %v, want ErrNotRunning", err)
	}
	if err := e.rt.RemoveContainer(e.ctx, app); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := e.rt.InspectContainer(e.ctx, app); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("inspect after remove: err = %v, want ErrNotFound", err)
	}
	// Removing a running sandbox kills it.
	if err := e.rt.RemoveContainer(e.ctx, sb); err != nil {
		t.Fatalf("remove running sandbox: %v", err)
	}
	if list, _ := e.rt.ListContainers(e.ctx, runtime.ListFilter{Node: e.node}); len(list) != 0 {
		t.Errorf("containers left after removal: %+v", list)
	}
}

func testStopTimeout(t *testing.T, e *env) {
	p := pod("stubborn")
	sb := e.startSandbox(t, p, "stubborn", false)
	// sleep as PID 1 has no SIGTERM handler, so the kernel ignores SIGTERM.
	app := e.startContainer(t, p, sb, "sleeper", 0, "sleep", "3600")
	start := time.Now()
	if err := e.rt.StopContainer(e.ctx, app, time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 20*time.Second {
		t.Errorf("stop took %v, want the 1s timeout then SIGKILL", d)
	}
	if st := e.inspect(t, app); st.State != runtime.StateExited || st.ExitCode != 137 {
		t.Errorf("status = %+v, want exited 137 (SIGKILL)", st)
	}
}

func testSandboxRules(t *testing.T, e *env) {
	p := pod("rules")
	sb := e.startSandbox(t, p, "rules", false)
	_, err := e.rt.CreateSandbox(e.ctx, runtime.SandboxSpec{Node: e.node, Pod: p, Image: e.image, Command: waitSandbox})
	if !errors.Is(err, runtime.ErrAlreadyExists) {
		t.Errorf("a second sandbox of the same attempt: err = %v, want ErrAlreadyExists", err)
	}
	spec := runtime.ContainerSpec{Node: e.node, Pod: p, SandboxID: sb, Name: "app", Image: e.image, Command: []string{"true"}}
	if _, err := e.rt.CreateContainer(e.ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rt.CreateContainer(e.ctx, spec); !errors.Is(err, runtime.ErrAlreadyExists) {
		t.Errorf("a second container of the same attempt: err = %v, want ErrAlreadyExists", err)
	}
	if err := e.rt.StopContainer(e.ctx, sb, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	spec.Attempt = 1
	id, err := e.rt.CreateContainer(e.ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rt.StartContainer(e.ctx, id); err == nil {
		t.Errorf("an app container started with its sandbox stopped")
	}
}

func testExitCodeAndAttempt(t *testing.T, e *env) {
	p := pod("crash")
	sb := e.startSandbox(t, p, "crash", false)
	app := e.startContainer(t, p, sb, "app", 3, "sh", "-c", "echo bye; exit 7")
	st := e.waitExited(t, app)
	if st.ExitCode != 7 || st.RestartCount() != 3 || st.PID != 0 || st.StartedAt.IsZero() || st.FinishedAt.Before(st.StartedAt) {
		t.Errorf("status = %+v, want exit 7, restart count 3, times in order", st)
	}
	if out, _ := e.logs(t, app, runtime.LogOptions{TailLines: -1}); out != "bye\n" {
		t.Errorf("logs = %q", out)
	}
	// A created container that never ran.
	id, err := e.rt.CreateContainer(e.ctx, runtime.ContainerSpec{Node: e.node, Pod: p, SandboxID: sb, Name: "idle", Image: e.image, Command: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	if st := e.inspect(t, id); st.State != runtime.StateCreated || !st.StartedAt.IsZero() || st.PID != 0 {
		t.Errorf("created container = %+v, want created, never started", st)
	}
}

// testCommandAndArgs checks Kubernetes' rules: command replaces the image's
// entrypoint (and drops its cmd), args replace its cmd.
func testCommandAndArgs(t *testing.T, e *env) {
	p := pod("cmd")
	sb := e.startSandbox(t, p, "cmd", false)
	for i, tc := range []struct {
		command, args []string
		want          string
	}{
		{[]string{"echo"}, []string{"a", "b"}, "a b\n"},
		{[]string{"echo", "c"}, nil, "c\n"},
		{nil, []string{"echo", "d"}, "d\n"},
		{nil, nil, ""}, // the image's cmd: sh, which exits at the end of its (empty) stdin
	} {
		id, err := e.rt.CreateContainer(e.ctx, runtime.ContainerSpec{Node: e.node, Pod: p, SandboxID: sb,
			Name: "c" + strconv.Itoa(i), Image: e.image, Command: tc.command, Args: tc.args})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.rt.StartContainer(e.ctx, id); err != nil {
			t.Fatal(err)
		}
		st := e.waitExited(t, id)
		if out, _ := e.logs(t, id, runtime.LogOptions{TailLines: -1}); st.ExitCode != 0 || out != tc.want {
			t.Errorf("command %q args %q: exit %d, output %q, want %q", tc.command, tc.args, st.ExitCode, out, tc.want)
		}
	}
}

func testLogs(t *testing.T, e *env) {
	p := pod("logs")
	sb := e.startSandbox(t, p, "logs", false)
	app := e.startContainer(t, p, sb, "app", 0, "sh", "-c", "echo one; echo two >&2; sleep 1; echo three")
	stdout, stderr := e.logs(t, app, runtime.LogOptions{Follow: true, TailLines: -1})
	if stdout != "one\nthree\n" || stderr != "two\n" {
		t.Errorf("followed logs = %q, %q", stdout, stderr)
	}
	if st := e.inspect(t, app); st.State != runtime.StateExited {
		t.Errorf("follow returned while the container was %s", st.State)
	}
	if stdout, stderr := e.logs(t, app, runtime.LogOptions{TailLines: 1}); stdout != "three\n" || stderr != "" {
		t.Errorf("tail 1 = %q, %q", stdout, stderr)
	}
	stdout, _ = e.logs(t, app, runtime.LogOptions{TailLines: -1, Timestamps: true})
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("timestamped logs = %q", stdout)
	}
	var stamps []time.Time
	for _, l := range lines {
		ts, text, _ := strings.Cut(l, " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || (text != "one" && text != "three") {
			t.Fatalf("timestamped line %q: %v", l, err)
		}
		stamps = append(stamps, at)
	}
	if d := stamps[1].Sub(stamps[0]); d < 500*time.Millisecond {
		t.Errorf("the lines a second apart are stamped %v apart", d)
	}
	since := stamps[0].Add(time.Millisecond)
	if stdout, stderr := e.logs(t, app, runtime.LogOptions{TailLines: -1, Since: since}); stdout != "three\n" || stderr != "two\n" && stderr != "" {
		t.Errorf("since the first line: %q, %q", stdout, stderr)
	}
	if stdout, stderr := e.logs(t, app, runtime.LogOptions{TailLines: -1, Since: time.Now().Add(time.Hour)}); stdout != "" || stderr != "" {
		t.Errorf("since an hour ahead: %q, %q", stdout, stderr)
	}
}

func testLogsFollowCancel(t *testing.T, e *env) {
	p := pod("follow")
	sb := e.startSandbox(t, p, "follow", false)
	app := e.startContainer(t, p, sb, "app", 0, "sh", "-c", "echo ready; trap 'exit 0' TERM; sleep 3600 & wait")
	ctx, cancel := context.WithCancel(e.ctx)
	w := &lockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- e.rt.Logs(ctx, app, runtime.LogOptions{Follow: true, TailLines: -1}, w, w) }()
	waitFor(t, 10*time.Second, "the first line", func() bool { return w.String() == "ready\n" })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled follow returned %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not return after its context was cancelled")
	}
}

func testExec(t *testing.T, e *env) {
	p := pod("exec")
	sb := e.startSandbox(t, p, "exec-host", false)
	app := e.startContainer(t, p, sb, "app", 0, "sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait")
	if code, out, _ := e.exec(t, app, "", "hostname"); code != 0 || out != "exec-host\n" {
		t.Errorf("hostname: %d %q", code, out)
	}
	if code, out, errOut := e.exec(t, app, "", "sh", "-c", "echo out; echo err >&2; exit 3"); code != 3 || out != "out\n" || errOut != "err\n" {
		t.Errorf("exec: %d %q %q, want 3 out err", code, out, errOut)
	}
	if code, out, _ := e.exec(t, app, "ping\npong\n", "cat"); code != 0 || out != "ping\npong\n" {
		t.Errorf("cat with stdin: %d %q", code, out)
	}
	if code, _, _ := e.exec(t, sb, "", "true"); code != 0 {
		t.Errorf("exec in the sandbox: %d", code)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := e.rt.Exec(ctx, app, runtime.ExecOptions{Cmd: []string{"sleep", "30"}}); err == nil {
		t.Errorf("exec outliving its context returned no error")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("exec returned %v after its context ended", d)
	}
}

func testListByLabels(t *testing.T, e *env) {
	p1, p2 := pod("one"), pod("two")
	sb1 := e.startSandbox(t, p1, "one", false)
	app1 := e.startContainer(t, p1, sb1, "app", 0, "sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait")
	sb2 := e.startSandbox(t, p2, "two", false)
	// A container of another node on the same runtime.
	other := &env{rt: e.rt, node: e.node + "-other", image: e.image, ctx: e.ctx}
	t.Cleanup(func() { e.cleanup(t, other.node) })
	other.startSandbox(t, pod("elsewhere"), "elsewhere", false)

	ids := func(f runtime.ListFilter) []string {
		t.Helper()
		list, err := e.rt.ListContainers(e.ctx, f)
		if err != nil {
			t.Fatalf("list %+v: %v", f, err)
		}
		var out []string
		for _, c := range list {
			if c.Meta.Node != e.node && f.Node == e.node {
				t.Errorf("list for %s returned a container of %s", e.node, c.Meta.Node)
			}
			out = append(out, c.ID)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	check := func(f runtime.ListFilter, want []string) {
		t.Helper()
		if got := ids(f); !slices.Equal(got, want) {
			t.Errorf("list %+v = %v, want %v", f, got, want)
		}
	}
	check(runtime.ListFilter{Node: e.node}, sorted(sb1, app1, sb2))
	check(runtime.ListFilter{Node: e.node, PodUID: p1.UID}, sorted(sb1, app1))
	check(runtime.ListFilter{Node: e.node, Kind: runtime.KindSandbox}, sorted(sb1, sb2))
	check(runtime.ListFilter{Node: e.node, Kind: runtime.KindContainer}, sorted(app1))

	if err := e.rt.StopContainer(e.ctx, sb2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	check(runtime.ListFilter{Node: e.node, RunningOnly: true}, sorted(sb1, app1))
	list, err := e.rt.ListContainers(e.ctx, runtime.ListFilter{Node: e.node, PodUID: p1.UID, Kind: runtime.KindContainer})
	if err != nil || len(list) != 1 {
		t.Fatalf("list = %v, %v", list, err)
	}
	c := list[0]
	want := runtime.Meta{Node: e.node, Kind: runtime.KindContainer, Pod: p1, SandboxID: sb1, Name: "app"}
	if c.Meta != want || c.State != runtime.StateRunning || c.Image != e.image || c.Created.IsZero() || c.Labels["test.mizzen.io/extra"] != "yes" {
		t.Errorf("listed container = %+v, want meta %+v, running", c, want)
	}
}

func testHostNetwork(t *testing.T, e *env) {
	p := pod("hostnet")
	sb := e.startSandbox(t, p, "ignored", true)
	app := e.startContainer(t, p, sb, "app", 0, "sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait")
	host, err := hostname()
	if err != nil {
		t.Fatal(err)
	}
	if code, out, _ := e.exec(t, app, "", "hostname"); code != 0 || out != host+"\n" {
		t.Errorf("hostname in a hostNetwork pod = %q, want the host's %q", out, host)
	}
}
