package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mizzen-dev/mizzen/internal/runtime/runtimetest"
)

// repoPath is a path in the repository (the tests run in e2e/).
func repoPath(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// requireTool fails (MIZZEN_TEST_STRICT=1) or skips when a command is
// missing; scripts/prereqs installs them.
func requireTool(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			runtimetest.SkipOrFail(t, "%s is not installed (run scripts/prereqs)", n)
		}
	}
}

// install runs scripts/install.sh with only PATH, TMPDIR and env set.
func install(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", append([]string{repoPath(t, "scripts/install.sh")}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + t.TempDir()}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// tree maps every path under root to its mode and, for files, a digest.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		v := info.Mode().String()
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			v += " " + hex.EncodeToString(sum[:])
		}
		rel, _ := filepath.Rel(root, p)
		m[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// systemdRoot is a temporary root that looks booted with systemd.
func systemdRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// execStart returns the words of a unit's ExecStart as systemd reads them
// (for the quoting install.sh writes: "…" with \\ \" $$ %%).
func execStart(t *testing.T, unit string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(unit, "\nExecStart=")
	if !ok {
		t.Fatalf("no ExecStart in\n%s", unit)
	}
	var words []string
	for _, line := range strings.Split(rest, "\n") {
		line = strings.TrimSpace(line)
		w, cont := strings.CutSuffix(line, `\`)
		w = strings.TrimSpace(w)
		if strings.HasPrefix(w, `"`) {
			w = strings.NewReplacer(`\\`, `\`, `\"`, `"`, "$$", "$", "%%", "%").Replace(w[1 : len(w)-1])
		}
		words = append(words, w)
		if !cont {
			break
		}
	}
	return words
}

// TestInstallScriptWritesServices installs a server and an agent into
// temporary roots, under systemd and OpenRC, checks every file, and runs
// the installer again to see it change nothing.
func TestInstallScriptWritesServices(t *testing.T) {
	sum := sha256File(t, binary)
	tricky := `--node-label=note=50%$HOME "it's" \x`
	for _, tc := range []struct {
		name, init, cmd string
		env             []string
		args            []string
		files           map[string]os.FileMode // path under the root → mode
		envFile         string
		wantArgs        []string
	}{{
		name: "server", init: "systemd",
		env:  []string{"INSTALL_MIZZEN_EXEC=--disable-agent --https-listen-port 7443", "MIZZEN_TOKEN=secret"},
		args: []string{tricky},
		files: map[string]os.FileMode{
			"usr/local/bin/mizzen": 0o755, "usr/local/bin/mizzen-uninstall.sh": 0o755,
			"etc/systemd/system/mizzen.service": 0o644, "etc/systemd/system/mizzen.service.env": 0o600,
		},
		envFile:  "MIZZEN_TOKEN=\"secret\"\n",
		wantArgs: []string{"/usr/local/bin/mizzen", "server", "--disable-agent", "--https-listen-port", "7443", tricky},
	}, {
		name: "agent", init: "systemd",
		env: []string{"MIZZEN_URL=https://10.0.0.1:6443", "MIZZEN_TOKEN=K10::server:abc", "INSTALL_MIZZEN_BIN_DIR=/opt/bin"},
		files: map[string]os.FileMode{
			"opt/bin/mizzen": 0o755, "opt/bin/mizzen-agent-uninstall.sh": 0o755,
			"etc/systemd/system/mizzen-agent.service": 0o644, "etc/systemd/system/mizzen-agent.service.env": 0o600,
		},
		envFile:  "MIZZEN_TOKEN=\"K10::server:abc\"\nMIZZEN_URL=\"https://10.0.0.1:6443\"\n",
		wantArgs: []string{"/opt/bin/mizzen", "agent"},
	}, {
		name: "openrc server", init: "openrc",
		args: []string{"server", "--data-dir", "/srv/mizzen", tricky},
		files: map[string]os.FileMode{
			"usr/local/bin/mizzen": 0o755, "usr/local/bin/mizzen-uninstall.sh": 0o755,
			"etc/init.d/mizzen": 0o755, "etc/mizzen/mizzen.env": 0o600,
		},
		wantArgs: []string{"server", "--data-dir", "/srv/mizzen", tricky},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if tc.init == "systemd" {
				root = systemdRoot(t)
			} else {
				// What install.sh probes for OpenRC.
				if err := os.MkdirAll(filepath.Join(root, "sbin"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(root, "sbin/openrc-run"), []byte("#!/bin/sh\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			sums := filepath.Join(t.TempDir(), "sha256sum-mizzen.txt")
			os.WriteFile(sums, []byte(sum+"  mizzen-other\n"+sum+"  mizzen-"+runtime.GOARCH+"\n"), 0o644)
			env := append([]string{"INSTALL_MIZZEN_ROOT=" + root, "INSTALL_MIZZEN_BINARY=" + binary, "INSTALL_MIZZEN_SHA256_FILE=" + sums}, tc.env...)
			out, err := install(t, env, tc.args...)
			if err != nil {
				t.Fatalf("install.sh: %v\n%s", err, out)
			}
			if !strings.Contains(out, "verified") {
				t.Errorf("install.sh did not verify the checksum:\n%s", out)
			}
			before := tree(t, root)
			for f, mode := range tc.files {
				info, err := os.Stat(filepath.Join(root, f))
				if err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				if info.Mode().Perm() != mode {
					t.Errorf("%s: mode %v, want %v", f, info.Mode().Perm(), mode)
				}
			}
			var files []string
			for f, v := range before {
				if !strings.HasPrefix(v, "d") {
					files = append(files, f)
				}
			}
			slices.Sort(files)
			want := slices.Sorted(maps.Keys(tc.files))
			if tc.init == "openrc" {
				want = slices.Sorted(slices.Values(append(want, "sbin/openrc-run")))
			}
			if !slices.Equal(files, want) {
				t.Errorf("files %v, want %v", files, want)
			}
			bin := filepath.Join(root, strings.TrimPrefix(tc.wantArgs[0], "/"))
			if tc.init == "openrc" {
				bin = filepath.Join(root, "usr/local/bin/mizzen")
			}
			if got := sha256File(t, bin); got != sum {
				t.Errorf("installed binary differs from %s", binary)
			}
			for f := range tc.files {
				if !strings.HasSuffix(f, ".env") {
					continue
				}
				if b, _ := os.ReadFile(filepath.Join(root, f)); string(b) != tc.envFile {
					t.Errorf("%s:\n%s\nwant:\n%s", f, b, tc.envFile)
				}
			}
			if tc.init == "systemd" {
				checkUnit(t, root, tc.files, tc.wantArgs)
			} else {
				checkOpenRC(t, filepath.Join(root, "etc/init.d/mizzen"), tc.wantArgs)
			}

			out, err = install(t, env, tc.args...)
			if err != nil {
				t.Fatalf("second install.sh: %v\n%s", err, out)
			}
			if after := tree(t, root); !maps.Equal(before, after) {
				t.Errorf("a second run changed the root:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

func checkUnit(t *testing.T, root string, files map[string]os.FileMode, wantArgs []string) {
	t.Helper()
	for f := range files {
		if !strings.HasSuffix(f, ".service") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		unit := string(b)
		for _, line := range []string{"EnvironmentFile=-/" + f + ".env", "KillMode=process", "Delegate=yes", "Restart=always", "WantedBy=multi-user.target"} {
			if !slices.Contains(strings.Split(unit, "\n"), line) {
				t.Errorf("%s lacks %q:\n%s", f, line, unit)
			}
		}
		if got := execStart(t, unit); !slices.Equal(got, wantArgs) {
			t.Errorf("ExecStart %q, want %q", got, wantArgs)
		}
	}
}

// checkOpenRC sources the init script as openrc-run does and checks the
// words of its command line.
func checkOpenRC(t *testing.T, script string, wantArgs []string) {
	t.Helper()
	out, err := exec.Command("sh", "-c", `. "$1" && printf '%s\n' "$command" && eval "set -- $command_args" && printf '%s\n' "$@"`, "sh", script).CombinedOutput()
	if err != nil {
		t.Fatalf("source %s: %v\n%s", script, err, out)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	want := append([]string{"/usr/local/bin/mizzen"}, wantArgs...)
	if !slices.Equal(got, want) {
		t.Errorf("OpenRC command %q, want %q", got, want)
	}
}

// TestInstallScriptFailsWithoutChanges runs failing installs over an
// existing one: each names the problem and leaves every file as it was
// (and no temporary files behind).
func TestInstallScriptFailsWithoutChanges(t *testing.T) {
	fakeBin := t.TempDir()
	os.WriteFile(filepath.Join(fakeBin, "uname"), []byte("#!/bin/sh\ncase \"$1\" in -m) echo riscv64 ;; *) echo Linux ;; esac\n"), 0o755)
	dist := t.TempDir()
	os.Symlink(binary, filepath.Join(dist, "mizzen-"+runtime.GOARCH))
	os.WriteFile(filepath.Join(dist, "sha256sum-mizzen.txt"), []byte(strings.Repeat("0", 64)+"  mizzen-"+runtime.GOARCH+"\n"), 0o644)
	srv := httptest.NewServer(http.FileServer(http.Dir(dist)))
	defer srv.Close()
	bad := filepath.Join(t.TempDir(), "sums")
	os.WriteFile(bad, []byte(strings.Repeat("1", 64)+"  mizzen-mips\n"+strings.Repeat("2", 64)+"  mizzen-riscv\n"), 0o644)

	for _, tc := range []struct {
		name  string
		env   []string
		args  []string
		want  string
		block string // a file made under the root where a directory must go
	}{
		{"unsupported arch", []string{"PATH=" + fakeBin + ":" + os.Getenv("PATH"), "INSTALL_MIZZEN_BINARY=" + binary}, nil, "unsupported architecture riscv64", ""},
		{"bad checksum", []string{"INSTALL_MIZZEN_BINARY=" + binary, "INSTALL_MIZZEN_SHA256=" + strings.Repeat("ab", 32)}, nil, "checksum mismatch for the mizzen-" + runtime.GOARCH + " binary", ""},
		{"checksum file without the arch", []string{"INSTALL_MIZZEN_BINARY=" + binary, "INSTALL_MIZZEN_SHA256_FILE=" + bad}, nil, "has no line for mizzen-" + runtime.GOARCH, ""},
		{"downloaded binary with a bad checksum", []string{"INSTALL_MIZZEN_DOWNLOAD_URL=" + srv.URL}, nil, "checksum mismatch", ""},
		{"download missing", []string{"INSTALL_MIZZEN_DOWNLOAD_URL=" + srv.URL + "/nothing/"}, nil, "download of " + srv.URL + "/nothing/mizzen-" + runtime.GOARCH + " failed", ""},
		{"no binary", nil, nil, "no binary to install", ""},
		{"missing binary", []string{"INSTALL_MIZZEN_BINARY=/nonexistent/mizzen"}, nil, "/nonexistent/mizzen is not a file", ""},
		{"agent without token", []string{"INSTALL_MIZZEN_BINARY=" + binary, "MIZZEN_URL=https://10.0.0.1:6443"}, nil, "MIZZEN_TOKEN", ""},
		{"unknown command", []string{"INSTALL_MIZZEN_BINARY=" + binary}, []string{"serve"}, "unknown command serve", ""},
		{"no init system", []string{"INSTALL_MIZZEN_BINARY=" + binary, "INSTALL_MIZZEN_INIT=runit"}, nil, "not systemd or openrc", ""},
		{"unit not writable", []string{"INSTALL_MIZZEN_BINARY=" + binary, "INSTALL_MIZZEN_SYSTEMD_DIR=/etc/blocked/system"}, nil, "/etc/blocked/system", "etc/blocked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := systemdRoot(t)
			if out, err := install(t, []string{"INSTALL_MIZZEN_ROOT=" + root, "INSTALL_MIZZEN_BINARY=" + binary}); err != nil {
				t.Fatalf("install.sh: %v\n%s", err, out)
			}
			if tc.block != "" {
				os.WriteFile(filepath.Join(root, tc.block), nil, 0o644)
			}
			before := tree(t, root)
			tmp := t.TempDir()
			// The later PATH wins in exec; a test's PATH goes last.
			env := append([]string{"INSTALL_MIZZEN_ROOT=" + root, "TMPDIR=" + tmp}, tc.env...)
			out, err := install(t, env, tc.args...)
			if err == nil {
				t.Fatalf("install.sh succeeded:\n%s", out)
			}
			if !strings.Contains(out, "[ERROR]") || !strings.Contains(out, tc.want) {
				t.Errorf("install.sh said:\n%s\nwant %q", out, tc.want)
			}
			if after := tree(t, root); !maps.Equal(before, after) {
				t.Errorf("a failed run changed the root:\nbefore %v\nafter  %v", before, after)
			}
			if left, _ := os.ReadDir(tmp); len(left) > 0 {
				t.Errorf("install.sh left %v in TMPDIR", left)
			}
		})
	}
}

// TestInstallScriptDownloads installs from a release served on loopback
// and from a file:// URL, checked against the release's checksum file.
func TestInstallScriptDownloads(t *testing.T) {
	dist := t.TempDir()
	os.Symlink(binary, filepath.Join(dist, "mizzen-"+runtime.GOARCH))
	os.WriteFile(filepath.Join(dist, "sha256sum-mizzen.txt"), []byte(sha256File(t, binary)+"  mizzen-"+runtime.GOARCH+"\n"), 0o644)
	srv := httptest.NewServer(http.FileServer(http.Dir(dist)))
	defer srv.Close()
	for _, url := range []string{srv.URL, "file://" + dist + "/"} {
		root := systemdRoot(t)
		out, err := install(t, []string{"INSTALL_MIZZEN_ROOT=" + root, "INSTALL_MIZZEN_DOWNLOAD_URL=" + url})
		if err != nil {
			t.Fatalf("install.sh from %s: %v\n%s", url, err, out)
		}
		if !strings.Contains(out, "Checksum of mizzen-"+runtime.GOARCH+" verified") {
			t.Errorf("install.sh from %s did not verify:\n%s", url, out)
		}
		if sha256File(t, filepath.Join(root, "usr/local/bin/mizzen")) != sha256File(t, binary) {
			t.Errorf("binary from %s differs", url)
		}
	}
}

// TestPackagingScriptsPassShellcheck checks the scripts and the uninstall
// scripts install.sh writes with sh -n and shellcheck.
func TestPackagingScriptsPassShellcheck(t *testing.T) {
	requireTool(t, "shellcheck")
	root := systemdRoot(t)
	for _, env := range [][]string{nil, {"MIZZEN_URL=https://10.0.0.1:6443", "MIZZEN_TOKEN=t"}} {
		if out, err := install(t, append(env, "INSTALL_MIZZEN_ROOT="+root, "INSTALL_MIZZEN_BINARY="+binary)); err != nil {
			t.Fatalf("install.sh: %v\n%s", err, out)
		}
	}
	for _, f := range []string{
		repoPath(t, "scripts/install.sh"), repoPath(t, "scripts/build"),
		filepath.Join(root, "usr/local/bin/mizzen-uninstall.sh"), filepath.Join(root, "usr/local/bin/mizzen-agent-uninstall.sh"),
	} {
		if out, err := exec.Command("sh", "-n", f).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", f, err, out)
		}
		if out, err := exec.Command("shellcheck", "-s", "sh", f).CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s: %v\n%s", f, err, out)
		}
	}
}

const uninstallPod = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  greeting: hello
---
apiVersion: v1
kind: Pod
metadata:
  name: doomed
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: ` + runtimetest.BusyboxImage + `
    imagePullPolicy: IfNotPresent
    command: ["sleep", "600"]
    volumeMounts:
    - {name: settings, mountPath: /etc/settings}
  volumes:
  - name: settings
    configMap: {name: settings}
`

// TestUninstallRemovesClusterTraces runs a one-node cluster with a pod,
// stops it, and runs the uninstall script install.sh wrote: no container
// of the node, no nftables table, no bridge, no data dir and no installed
// file is left.
func TestUninstallRemovesClusterTraces(t *testing.T) {
	if os.Geteuid() != 0 {
		runtimetest.SkipOrFail(t, "uninstall removes the pod network: it needs root")
	}
	requireTool(t, "nft", "ip")
	s := startNode(t)
	if out, err := s.kubectlIn(uninstallPod, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	eventually(t, 60*time.Second, func() error {
		if p := s.pods("default", ""); len(p) != 1 || p[0].Status.Phase != "Running" {
			return fmt.Errorf("pods %+v", p)
		}
		return nil
	})
	s.stop()
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("server exited with %d:\n%s", code, s.logs())
	}
	if len(nodeContainers(t, s.node)) == 0 {
		t.Fatal("the node has no containers to remove")
	}
	for _, probe := range [][]string{{"nft", "list", "table", "ip", "mizzen"}, {"ip", "link", "show", "mizzen0"}} {
		if err := run(probe...); err != nil {
			t.Fatalf("before uninstall: %v", err)
		}
	}

	root := t.TempDir()
	env := []string{"INSTALL_MIZZEN_ROOT=" + root, "INSTALL_MIZZEN_BINARY=" + binary, "INSTALL_MIZZEN_INIT=systemd",
		"INSTALL_MIZZEN_EXEC=--node-name " + s.node}
	if out, err := install(t, env); err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	cmd := exec.Command(filepath.Join(root, "usr/local/bin/mizzen-uninstall.sh"))
	cmd.Env = append(os.Environ(), "MIZZEN_DATA_DIR="+s.dataDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mizzen-uninstall.sh: %v\n%s", err, out)
	}
	t.Logf("mizzen-uninstall.sh:\n%s", out)
	if ids := nodeContainers(t, s.node); len(ids) > 0 {
		t.Errorf("containers of %s left: %v\n%s", s.node, ids, out)
	}
	for _, probe := range [][]string{{"nft", "list", "table", "ip", "mizzen"}, {"ip", "link", "show", "mizzen0"}} {
		if err := run(probe...); err == nil {
			t.Errorf("%v still succeeds after uninstall:\n%s", probe, out)
		}
	}
	if _, err := os.Stat(s.dataDir); !os.IsNotExist(err) {
		t.Errorf("data dir %s: %v, want it gone", s.dataDir, err)
	}
	for f, v := range tree(t, root) {
		if !strings.HasPrefix(v, "d") {
			t.Errorf("%s left in the root", f)
		}
	}
}

// fakeMizzen writes a stand-in for the binary that records its arguments
// in calls, so that an uninstall script can run without touching the host.
func fakeMizzen(t *testing.T) (bin, calls string) {
	t.Helper()
	dir := t.TempDir()
	bin, calls = filepath.Join(dir, "mizzen"), filepath.Join(dir, "calls")
	script := "#!/bin/sh\necho \"$*\" >>'" + calls + "'\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, calls
}

// TestUninstallKeepsWhatItNeedsWhenDockerFails runs an uninstall script
// whose Docker cannot be reached: it must say so and keep the binary, the
// data and itself, so that it can run again once Docker is back. And the
// Docker it talks to is the service's, not the installer's DOCKER_HOST.
func TestUninstallKeepsWhatItNeedsWhenDockerFails(t *testing.T) {
	if os.Geteuid() != 0 {
		runtimetest.SkipOrFail(t, "the uninstall script runs as root only")
	}
	requireTool(t, "docker")
	nowhere := "unix://" + filepath.Join(t.TempDir(), "nothing.sock")
	for _, tc := range []struct {
		name string
		env  []string
		ok   bool
	}{
		{"service's docker unreachable", []string{"INSTALL_MIZZEN_EXEC=--docker-host " + nowhere + " --node-name " + uniqueNode("gone")}, false},
		{"installer's DOCKER_HOST ignored", []string{"DOCKER_HOST=" + nowhere, "INSTALL_MIZZEN_EXEC=--node-name " + uniqueNode("gone")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := systemdRoot(t)
			bin, calls := fakeMizzen(t)
			token := filepath.Join(root, "var/lib/mizzen/server/token")
			os.MkdirAll(filepath.Dir(token), 0o700)
			os.WriteFile(token, []byte("secret\n"), 0o600)
			env := append([]string{"INSTALL_MIZZEN_ROOT=" + root, "INSTALL_MIZZEN_BINARY=" + bin}, tc.env...)
			if out, err := install(t, env); err != nil {
				t.Fatalf("install.sh: %v\n%s", err, out)
			}
			uninstall := filepath.Join(root, "usr/local/bin/mizzen-uninstall.sh")
			cmd := exec.Command(uninstall)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
			out, err := cmd.CombinedOutput()
			if tc.ok {
				if err != nil {
					t.Fatalf("mizzen-uninstall.sh: %v\n%s", err, out)
				}
				if _, err := os.Stat(token); !os.IsNotExist(err) {
					t.Errorf("data dir kept: %v\n%s", err, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("mizzen-uninstall.sh succeeded:\n%s", out)
			}
			if !strings.Contains(string(out), "Docker") || !strings.Contains(string(out), "run "+uninstall+" again") {
				t.Errorf("mizzen-uninstall.sh said:\n%s\nwant the Docker problem and to run it again", out)
			}
			for _, f := range []string{token, uninstall, filepath.Join(root, "usr/local/bin/mizzen")} {
				if _, err := os.Stat(f); err != nil {
					t.Errorf("%v after a failed uninstall:\n%s", err, out)
				}
			}
			if b, _ := os.ReadFile(calls); strings.Contains(string(b), "--cleanup") {
				t.Errorf("the pod network was removed under containers still running: %s", b)
			}
		})
	}
}

// TestInstallScriptIgnoresCDPATH installs into a relative root with CDPATH
// set, where cd prints the directory it changes to.
func TestInstallScriptIgnoresCDPATH(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755)
	cmd := exec.Command("sh", repoPath(t, "scripts/install.sh"))
	cmd.Dir = parent
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + t.TempDir(), "CDPATH=" + parent,
		"INSTALL_MIZZEN_ROOT=root", "INSTALL_MIZZEN_BINARY=" + binary}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	if sha256File(t, filepath.Join(root, "usr/local/bin/mizzen")) != sha256File(t, binary) {
		t.Error("binary not installed under the root")
	}
}

// envGenerator reads environment.d files with systemd's own parser, the
// one EnvironmentFile= uses.
const envGenerator = "/usr/lib/systemd/user-environment-generators/30-systemd-environment-d-generator"

// TestInstallScriptEnvFileReadsBack writes a value with quotes, blanks and
// backslashes into the env file and reads it back as systemd and as
// OpenRC's sh do.
func TestInstallScriptEnvFileReadsBack(t *testing.T) {
	if _, err := os.Stat(envGenerator); err != nil {
		runtimetest.SkipOrFail(t, "systemd's environment generator is missing: %v", err)
	}
	// No $: environment.d expands variables, EnvironmentFile= does not.
	value := `it's "q" \x  50% end\`
	root := systemdRoot(t)
	if out, err := install(t, []string{"INSTALL_MIZZEN_ROOT=" + root, "INSTALL_MIZZEN_BINARY=" + binary, "MIZZEN_NODE_LABEL=" + value}); err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	envFile := filepath.Join(root, "etc/systemd/system/mizzen.service.env")
	conf := t.TempDir()
	os.MkdirAll(filepath.Join(conf, "environment.d"), 0o755)
	b, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(conf, "environment.d/mizzen.conf"), b, 0o600)
	for name, script := range map[string]string{
		"systemd": `eval "$(env -i XDG_CONFIG_HOME="$2" "$3")" && printf %s "$MIZZEN_NODE_LABEL"`,
		"sh":      `set -a && . "$1" && printf %s "$MIZZEN_NODE_LABEL"`,
	} {
		out, err := exec.Command("sh", "-c", script, "sh", envFile, conf, envGenerator).CombinedOutput()
		if err != nil || string(out) != value {
			t.Errorf("%s reads %q (%v) from\n%s\nwant %q", name, out, err, b, value)
		}
	}
}

// TestUninstallUnmountsVolumesOfADataDirWithASlash gives the data dir with
// a trailing slash, as a user may: the tmpfs the kubelet mounted for a
// Secret under it must be unmounted and the data dir removed.
func TestUninstallUnmountsVolumesOfADataDirWithASlash(t *testing.T) {
	if os.Geteuid() != 0 {
		runtimetest.SkipOrFail(t, "mounting a tmpfs needs root")
	}
	requireTool(t, "docker", "mount")
	root := systemdRoot(t)
	data := filepath.Join(root, "var/lib/mz")
	volume := filepath.Join(data, "agent/pods/uid/volumes/kubernetes.io~secret/token")
	os.MkdirAll(volume, 0o755)
	if err := run("mount", "-t", "tmpfs", "tmpfs", volume); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("umount", volume).Run() })
	bin, _ := fakeMizzen(t)
	env := []string{"INSTALL_MIZZEN_ROOT=" + root, "INSTALL_MIZZEN_BINARY=" + bin,
		"INSTALL_MIZZEN_EXEC=--data-dir /var/lib/mz/ --node-name " + uniqueNode("gone")}
	if out, err := install(t, env); err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	cmd := exec.Command(filepath.Join(root, "usr/local/bin/mizzen-uninstall.sh"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mizzen-uninstall.sh: %v\n%s", err, out)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("data dir %s: %v, want it gone\n%s", data, err, out)
	}
}

// TestInstallScriptStartsServicesAsK3s installs with the bin and systemd
// dirs in temporary directories and no root, so that it drives systemctl
// (a stand-in recording its calls): it enables and restarts the service,
// and INSTALL_MIZZEN_SKIP_ENABLE=true neither enables nor starts it, as
// INSTALL_K3S_SKIP_ENABLE does.
func TestInstallScriptStartsServicesAsK3s(t *testing.T) {
	if os.Geteuid() != 0 {
		runtimetest.SkipOrFail(t, "install.sh without INSTALL_MIZZEN_ROOT runs as root only")
	}
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"default", nil, "daemon-reload\nenable mizzen\nrestart mizzen\n"},
		{"skip start", []string{"INSTALL_MIZZEN_SKIP_START=true"}, "daemon-reload\nenable mizzen\n"},
		{"skip enable", []string{"INSTALL_MIZZEN_SKIP_ENABLE=true"}, "daemon-reload\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fakeBin := t.TempDir()
			calls := filepath.Join(fakeBin, "calls")
			os.WriteFile(filepath.Join(fakeBin, "systemctl"), []byte("#!/bin/sh\necho \"$*\" >>'"+calls+"'\n"), 0o755)
			env := append([]string{"PATH=" + fakeBin + ":" + os.Getenv("PATH"), "INSTALL_MIZZEN_BINARY=" + binary, "INSTALL_MIZZEN_INIT=systemd",
				"INSTALL_MIZZEN_BIN_DIR=" + t.TempDir(), "INSTALL_MIZZEN_SYSTEMD_DIR=" + t.TempDir()}, tc.env...)
			out, err := install(t, env)
			if err != nil {
				t.Fatalf("install.sh: %v\n%s", err, out)
			}
			if b, _ := os.ReadFile(calls); string(b) != tc.want {
				t.Errorf("systemctl calls:\n%s\nwant:\n%s", b, tc.want)
			}
		})
	}
}
