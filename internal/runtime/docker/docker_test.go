package docker_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/mizzen-dev/mizzen/internal/runtime"
	"github.com/mizzen-dev/mizzen/internal/runtime/docker"
	"github.com/mizzen-dev/mizzen/internal/runtime/runtimetest"
)

const dockerHost = "unix:///var/run/docker.sock"

// newRuntime returns a Runtime on the local daemon, skipping the test (or
// failing it under MIZZEN_TEST_STRICT=1) when `docker info` fails.
func newRuntime(t *testing.T) *docker.Runtime {
	t.Helper()
	if out, err := exec.Command("docker", "-H", dockerHost, "info").CombinedOutput(); err != nil {
		runtimetest.SkipOrFail(t, "docker info: %v: %s", err, lastLine(out))
	}
	rt, err := docker.New(docker.Config{Host: dockerHost})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

func TestContract(t *testing.T) {
	runtimetest.Run(t, func(t *testing.T) runtime.Runtime { return newRuntime(t) })
}

func TestVersionIsDocker(t *testing.T) {
	rt := newRuntime(t)
	v, err := rt.Version(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != "docker" || !strings.HasPrefix(v.String(), "docker://") || v.APIVersion == "" {
		t.Errorf("version = %+v (%s)", v, v)
	}
}

// TestContainerSpec checks how a ContainerSpec maps onto Docker: the
// settings as Docker records them, and their effect inside the container.
func TestContainerSpec(t *testing.T) {
	rt := newRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	image := runtimetest.EnsureBusybox(t, rt)
	node := "rtt-spec-" + time.Now().Format("150405.000000")
	t.Cleanup(func() { removeAll(t, rt, node) })

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pod := runtime.PodRef{UID: "uid-spec", Name: "spec", Namespace: "default"}
	sb, err := rt.CreateSandbox(ctx, runtime.SandboxSpec{Node: node, Pod: pod, Image: image, Hostname: "spec",
		Command: []string{"sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"},
		DNS:     runtime.DNSConfig{Servers: []string{"10.43.0.10"}, Searches: []string{"default.svc.cluster.local"}, Options: []string{"ndots:5"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.StartContainer(ctx, sb); err != nil {
		t.Fatal(err)
	}
	uid, gid := int64(1000), int64(2000)
	spec := runtime.ContainerSpec{
		Node: node, Pod: pod, SandboxID: sb, Name: "app", Image: image,
		Command:    []string{"sh", "-c"},
		Args:       []string{"trap 'exit 0' TERM; sleep 3600 & wait"},
		Env:        []string{"FOO=bar baz"},
		WorkingDir: "/tmp",
		Mounts: []runtime.Mount{
			{Kind: runtime.MountBind, Source: dir, Target: "/data", ReadOnly: true},
			{Kind: runtime.MountTmpfs, Target: "/scratch", SizeBytes: 1 << 20},
		},
		Resources: runtime.ResourcesFor(250, 500, 64<<20),
		Security: runtime.Security{RunAsUser: &uid, RunAsGroup: &gid, SupplementalGroups: []int64{3000},
			ReadOnlyRootFS: true, CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"MKNOD"}},
	}
	app, err := rt.CreateContainer(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.StartContainer(ctx, app); err != nil {
		t.Fatal(err)
	}

	c, err := client.NewClientWithOpts(client.WithHost(dockerHost), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ci, err := c.ContainerInspect(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	hc := ci.HostConfig
	join := "container:" + sb
	if string(hc.NetworkMode) != join || string(hc.IpcMode) != join || string(hc.UTSMode) != join {
		t.Errorf("namespaces: net %s ipc %s uts %s, want %s", hc.NetworkMode, hc.IpcMode, hc.UTSMode, join)
	}
	if hc.Memory != 64<<20 || hc.CPUShares != 256 || hc.CPUQuota != 50000 || hc.CPUPeriod != 100000 {
		t.Errorf("resources: memory %d shares %d quota %d period %d", hc.Memory, hc.CPUShares, hc.CPUQuota, hc.CPUPeriod)
	}
	if !hc.ReadonlyRootfs || len(hc.CapAdd) != 1 || len(hc.CapDrop) != 1 || ci.Config.User != "1000:2000" {
		t.Errorf("security: ro %v add %v drop %v user %q", hc.ReadonlyRootfs, hc.CapAdd, hc.CapDrop, ci.Config.User)
	}
	sbi, err := c.ContainerInspect(ctx, sb)
	if err != nil {
		t.Fatal(err)
	}
	if sbi.HostConfig.NetworkMode != "none" || sbi.HostConfig.IpcMode != "shareable" || sbi.Config.Hostname != "spec" {
		t.Errorf("sandbox: net %s ipc %s hostname %s", sbi.HostConfig.NetworkMode, sbi.HostConfig.IpcMode, sbi.Config.Hostname)
	}

	run := func(script string) string {
		t.Helper()
		var out strings.Builder
		code, err := rt.Exec(ctx, app, runtime.ExecOptions{Cmd: []string{"sh", "-c", script}, Stdout: &out, Stderr: &out})
		if err != nil || code != 0 {
			t.Errorf("exec %q: code %d, err %v, output %q", script, code, err, out.String())
		}
		return out.String()
	}
	if got := run(`echo "$FOO"; pwd; cat /data/f; id -u; id -g; id -G`); got != "bar baz\n/tmp\nfrom the host\n1000\n2000\n2000 3000\n" {
		t.Errorf("inside the container: %q", got)
	}
	if got := run(`touch /x 2>&1 || echo read-only; touch /data/x 2>&1 || echo data read-only; touch /scratch/x && echo scratch ok`); !strings.Contains(got, "read-only\n") || !strings.Contains(got, "data read-only\n") || !strings.Contains(got, "scratch ok\n") {
		t.Errorf("filesystems: %q", got)
	}
	if got := run(`cat /etc/resolv.conf`); !strings.Contains(got, "nameserver 10.43.0.10") || !strings.Contains(got, "search default.svc.cluster.local") || !strings.Contains(got, "ndots:5") {
		t.Errorf("resolv.conf: %q", got)
	}

	// The app shares the sandbox's network namespace, at /proc/PID/ns/net.
	sbSt, err := rt.InspectContainer(ctx, sb)
	if err != nil {
		t.Fatal(err)
	}
	appSt, err := rt.InspectContainer(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	sbNet, err1 := os.Readlink("/proc/" + strconv.Itoa(sbSt.PID) + "/ns/net")
	appNet, err2 := os.Readlink("/proc/" + strconv.Itoa(appSt.PID) + "/ns/net")
	self, _ := os.Readlink("/proc/self/ns/net")
	if err1 != nil || err2 != nil {
		runtimetest.SkipOrFail(t, "reading network namespaces needs root: %v %v", err1, err2)
	}
	if sbNet != appNet || sbNet == self {
		t.Errorf("network namespaces: sandbox %s, app %s, host %s", sbNet, appNet, self)
	}
}

func removeAll(t *testing.T, rt runtime.Runtime, node string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := rt.ListContainers(ctx, runtime.ListFilter{Node: node})
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, c := range list {
		if err := rt.RemoveContainer(ctx, c.ID); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}
