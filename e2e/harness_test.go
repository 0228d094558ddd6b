// Package e2e runs the real mizzen binary and drives it with the real
// kubectl and client-go.
package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the mizzen binary built once for the package (or the one
// MIZZEN_E2E_BINARY names).
var binary string

func TestMain(m *testing.M) {
	if b := os.Getenv("MIZZEN_E2E_BINARY"); b != "" {
		binary = b
		code := m.Run()
		labTeardown()
		os.Exit(code)
	}
	dir, err := os.MkdirTemp("", "mizzen-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "mizzen")
	build := exec.Command("go", "build", "-o", binary, "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build mizzen:", err)
		os.Exit(1)
	}
	code := m.Run()
	labTeardown()
	os.RemoveAll(dir)
	os.Exit(code)
}

// kubectlPath is the kubectl the tests drive.
func kubectlPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kubectl")
	if err != nil {
		if os.Getenv("MIZZEN_TEST_STRICT") == "1" {
			t.Fatal("kubectl not found")
		}
		t.Skip("kubectl not found")
	}
	return p
}

// handedOut holds every port freePort returned, so that two calls never
// give the same port (the kernel may offer a just-closed one again).
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// freePort returns an unused loopback port no earlier call returned.
func freePort(t *testing.T) int {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		handedOut.Lock()
		dup := handedOut.ports[port]
		handedOut.ports[port] = true
		handedOut.Unlock()
		if !dup {
			return port
		}
	}
}

// server is one running `mizzen server`.
type server struct {
	proc
	dataDir    string
	kubeconfig string
	port       int
	etcdPort   int
	node       string // the node its agent runs, empty with --disable-agent
	// host is the address the server listens on: loopback, or the lab
	// bridge's when agents run in lab hosts (network namespaces).
	host string
}

// proc is one mizzen process a test runs, in its own process group, with
// its output kept.
type proc struct {
	t      *testing.T
	name   string // "server" or "agent <node>", for messages
	args   []string
	netns  string // the network namespace it runs in (empty: the test's)
	cmd    *exec.Cmd
	mu     sync.Mutex
	log    bytes.Buffer  // guarded by mu
	exited chan struct{} // closed when the process has exited
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.Write(b)
}

// launch starts the process.
func (p *proc) launch() {
	p.t.Helper()
	p.cmd = exec.Command(binary, p.args...)
	if p.netns != "" {
		p.cmd = inNetns(p.netns, append([]string{binary}, p.args...)...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.exited = make(chan struct{})
	go func() { p.cmd.Wait(); close(p.exited) }()
}

// stop stops a running process with SIGTERM (SIGKILL after 20 s, an
// error); it reports whether the process was still running.
func (p *proc) stop() bool {
	if p.cmd == nil || p.cmd.Process == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		p.t.Errorf("%s did not stop within 20s of SIGTERM", p.name)
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
	return true
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// startServer starts a server (control plane only) on free loopback ports
// in a temporary data directory and waits until /readyz answers ok.
func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	return launchServer(t, false, "127.0.0.1", extra...)
}

// launchServer starts a server listening on host (loopback, or
// labGateway for a server whose agents run in lab hosts).
func launchServer(t *testing.T, withAgent bool, host string, extra ...string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{proc: proc{t: t, name: "server"}, dataDir: dir, kubeconfig: filepath.Join(dir, "kubeconfig.yaml"), port: freePort(t), etcdPort: freePort(t), host: host}
	role := []string{"--disable-agent"}
	if withAgent {
		s.node = uniqueNode("e2e")
		role = agentArgs(t, s.node, host)
		t.Cleanup(func() { removeNodeContainers(t, s.node) })
	}
	s.args = append([]string{"server",
		"--data-dir", dir,
		"--bind-address", host,
		"--advertise-address", host,
		"--https-listen-port", strconv.Itoa(s.port),
		"--etcd-client-port", strconv.Itoa(s.etcdPort),
		"--etcd-peer-port", strconv.Itoa(freePort(t)),
		"--write-kubeconfig", s.kubeconfig,
		"--debug",
	}, append(role, extra...)...)
	s.start()
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("MIZZEN_E2E_LOGS") == "1" {
			s.dump()
		}
		s.stop()
		if code := s.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("server exited with %d on SIGTERM:\n%s", code, s.logs())
		}
		// A clean run and stop logs no errors of mizzen's (etcd's own
		// lines, JSON at --debug, include its shutdown chatter).
		for _, l := range strings.Split(s.logs(), "\n") {
			if strings.Contains(l, "level=error") || strings.Contains(l, "level=fatal") || strings.HasPrefix(l, "panic") {
				t.Errorf("server logged an error: %s", l)
			}
		}
	})
	return s
}

func (s *server) start() {
	s.t.Helper()
	s.launch()
	s.waitReady(30 * time.Second)
}

// restart stops and starts the server with the same data directory.
func (s *server) restart() {
	s.t.Helper()
	s.stop()
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		s.t.Fatalf("server exited with %d on SIGTERM:\n%s", code, s.logs())
	}
	s.start()
}

func (s *server) url() string { return "https://" + s.host + ":" + strconv.Itoa(s.port) }

// insecureClient talks to the server without credentials.
func insecureClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}

func (s *server) waitReady(timeout time.Duration) {
	s.t.Helper()
	c := insecureClient()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			s.t.Fatalf("server exited during start:\n%s", s.logs())
		default:
		}
		resp, err := c.Get(s.url() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("server not ready after %v:\n%s", timeout, s.logs())
}

// kubectl runs kubectl against the server and returns stdout and stderr
// combined, failing the test on a non-zero exit.
func (s *server) kubectl(args ...string) string {
	s.t.Helper()
	out, err := s.kubectlErr(args...)
	if err != nil {
		s.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// kubectlErr runs kubectl and returns its output and error.
func (s *server) kubectlErr(args ...string) (string, error) {
	return s.kubectlIn("", args...)
}

// kubectlIn runs kubectl with stdin.
func (s *server) kubectlIn(stdin string, args ...string) (string, error) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectlPath(s.t), append([]string{"--kubeconfig", s.kubeconfig}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// dump prints what a person would look at when a test fails.
func (s *server) dump() {
	if out, err := s.kubectlErr("get", "all,cm,secrets,ns,nodes,events", "-A", "-o", "wide"); err == nil {
		s.t.Logf("kubectl get -A -o wide:\n%s", out)
	}
	if s.node != "" {
		dumpContainers(s.t, s.node)
	}
	s.t.Logf("server log:\n%s", s.logs())
}

// eventually polls f until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("condition not met after %v: %v", timeout, err)
}
