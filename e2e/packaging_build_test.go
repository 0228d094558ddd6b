package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// What the cross-built binaries are stamped with.
const (
	stampVersion = "v9.9.9-e2e"
	stampCommit  = "0123456789ab"
	stampDate    = "2026-01-02T03:04:05Z"
)

// crossBuild is scripts/build's arm64 and arm output, built once.
var crossBuild struct {
	once sync.Once
	dir  string
	err  error
}

// crossBuilt runs scripts/build for arm64 and arm (once per test binary)
// and returns its dist directory.
func crossBuilt(t *testing.T) string {
	t.Helper()
	crossBuild.once.Do(func() {
		// Beside the binary TestMain builds, so that it goes with it.
		crossBuild.dir = filepath.Join(filepath.Dir(binary), "dist")
		if os.Getenv("MIZZEN_E2E_BINARY") != "" {
			crossBuild.dir = filepath.Join(os.TempDir(), "mizzen-e2e-dist")
		}
		cmd := exec.Command("sh", repoPath(t, "scripts/build"), "arm64", "arm")
		cmd.Env = append(os.Environ(), "DIST="+crossBuild.dir, "VERSION="+stampVersion, "COMMIT="+stampCommit, "DATE="+stampDate)
		if out, err := cmd.CombinedOutput(); err != nil {
			crossBuild.err = fmt.Errorf("scripts/build: %v\n%s", err, out)
		}
	})
	if crossBuild.err != nil {
		t.Fatal(crossBuild.err)
	}
	return crossBuild.dir
}

// TestCrossBuiltBinariesRunUnderQemu runs scripts/build's arm64 and armv7
// binaries under qemu-user: they print the stamped version, and the sums
// file matches them.
func TestCrossBuiltBinariesRunUnderQemu(t *testing.T) {
	requireTool(t, "qemu-aarch64-static", "qemu-arm-static")
	dist := crossBuilt(t)
	cmd := exec.Command("sha256sum", "-c", "sha256sum-mizzen.txt")
	cmd.Dir = dist
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c: %v\n%s", err, out)
	}
	for _, tc := range []struct{ qemu, arch, platform string }{
		{"qemu-aarch64-static", "arm64", "linux/arm64"},
		{"qemu-arm-static", "arm", "linux/arm"},
	} {
		out, err := exec.Command(tc.qemu, filepath.Join(dist, "mizzen-"+tc.arch), "version").CombinedOutput()
		if err != nil {
			t.Errorf("%s mizzen-%s version: %v\n%s", tc.qemu, tc.arch, err, out)
			continue
		}
		want := "mizzen version " + stampVersion + " (" + stampCommit + ") built " + stampDate
		if !strings.HasPrefix(string(out), want) || !strings.Contains(string(out), tc.platform) {
			t.Errorf("mizzen-%s version: %q, want %q … %s", tc.arch, out, want, tc.platform)
		}
	}
}

// TestArmServersBecomeReadyUnderQemu runs the control plane of the arm64
// and armv7 binaries under qemu-user on loopback ports until /readyz
// answers 200, and stops it with SIGTERM.
func TestArmServersBecomeReadyUnderQemu(t *testing.T) {
	requireTool(t, "qemu-aarch64-static", "qemu-arm-static")
	dist := crossBuilt(t)
	for _, tc := range []struct{ qemu, arch string }{
		{"qemu-aarch64-static", "arm64"},
		{"qemu-arm-static", "arm"},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			dir := t.TempDir()
			s := &server{proc: proc{t: t, name: tc.arch + " server"}, dataDir: dir, host: "127.0.0.1", port: freePort(t), etcdPort: freePort(t)}
			s.cmd = exec.Command(tc.qemu, filepath.Join(dist, "mizzen-"+tc.arch), "server", "--disable-agent",
				"--data-dir", dir, "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
				"--https-listen-port", strconv.Itoa(s.port), "--etcd-client-port", strconv.Itoa(s.etcdPort),
				"--etcd-peer-port", strconv.Itoa(freePort(t)), "--write-kubeconfig", filepath.Join(dir, "kubeconfig.yaml"))
			s.cmd.Stdout, s.cmd.Stderr = &s.proc, &s.proc
			s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := s.cmd.Start(); err != nil {
				t.Fatal(err)
			}
			s.exited = make(chan struct{})
			go func() { s.cmd.Wait(); close(s.exited) }()
			t.Cleanup(func() { s.stop() })
			s.waitReady(90 * time.Second)
			if !s.stop() || s.cmd.ProcessState.ExitCode() != 0 {
				t.Errorf("%s server did not stop cleanly on SIGTERM (exit %d):\n%s", tc.arch, s.cmd.ProcessState.ExitCode(), s.logs())
			}
			for _, l := range strings.Split(s.logs(), "\n") {
				if strings.Contains(l, "level=error") || strings.Contains(l, "level=fatal") || strings.HasPrefix(l, "panic") {
					t.Errorf("%s server logged an error: %s", tc.arch, l)
				}
			}
		})
	}
}

// TestDockerImageRunsVersion builds the Dockerfile (FROM scratch, no
// registry) around the static binary and runs `mizzen version` in it.
func TestDockerImageRunsVersion(t *testing.T) {
	requireTool(t, "docker")
	ctx := t.TempDir()
	if err := os.MkdirAll(filepath.Join(ctx, "dist"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{
		{binary, "dist/mizzen-" + runtime.GOARCH},
		{repoPath(t, "Dockerfile"), "Dockerfile"},
		{repoPath(t, ".dockerignore"), ".dockerignore"},
	} {
		if out, err := exec.Command("cp", c[0], filepath.Join(ctx, c[1])).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
	}
	image := uniqueNode("mizzen-e2e-image") + ":test"
	if out, err := exec.Command("docker", "build", "-q", "--build-arg", "ARCH="+runtime.GOARCH, "-t", image, ctx).CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", image).Run() })
	got, err := exec.Command("docker", "run", "--rm", image, "version").Output()
	if err != nil {
		t.Fatalf("docker run %s version: %v\n%s", image, err, got)
	}
	want, err := exec.Command(binary, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("image's version %q, want %q", got, want)
	}
}

// TestBuildStampsACleanTreeClean runs scripts/build in a fresh repository
// whose files were only touched (a copied checkout, a CI cache): the
// commit it stamps must not say -dirty. It must build that repository even
// with a CDPATH set. A stand-in go records the flags.
func TestBuildStampsACleanTreeClean(t *testing.T) {
	requireTool(t, "git")
	repo := t.TempDir()
	os.MkdirAll(filepath.Join(repo, "scripts"), 0o755)
	b, err := os.ReadFile(repoPath(t, "scripts/build"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(repo, "scripts/build"), b, 0o755)
	os.WriteFile(filepath.Join(repo, ".gitignore"), []byte("/dist/\n/fakebin/\n"), 0o644)
	fakeBin := filepath.Join(repo, "fakebin")
	os.MkdirAll(fakeBin, 0o755)
	os.WriteFile(filepath.Join(fakeBin, "go"), []byte(`#!/bin/sh
while [ "$#" -gt 0 ]; do
	case "$1" in -ldflags) flags=$2 ;; -o) out=$2 ;; esac
	shift
done
printf '%s\n' "$flags" >"$out"
`), 0o755)
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-c", "user.email=e2e@mizzen", "-c", "user.name=e2e"}, args...)...)
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", ".gitignore", "scripts/build")
	git("commit", "-q", "-m", "build")
	commit := git("rev-parse", "--short=12", "HEAD")
	// A later mtime, the same content: git's index no longer matches stat.
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(repo, "scripts/build"), later, later)
	// Run as scripts/build, with a CDPATH that holds another scripts/.
	decoy := t.TempDir()
	os.MkdirAll(filepath.Join(decoy, "scripts"), 0o755)
	cmd := exec.Command("sh", "scripts/build", "amd64")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "PATH="+fakeBin+":"+os.Getenv("PATH"), "VERSION=v1.0.0", "DATE="+stampDate, "CDPATH="+decoy)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/build: %v\n%s", err, out)
	}
	flags, err := os.ReadFile(filepath.Join(repo, "dist/mizzen-amd64"))
	if err != nil {
		t.Fatal(err)
	}
	if want := ".Commit=" + commit + " "; !strings.Contains(string(flags), want) {
		t.Errorf("ldflags %q, want %q", flags, want)
	}
}
