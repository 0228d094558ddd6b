package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mizzen-dev/mizzen/internal/runtime/docker"
	"github.com/mizzen-dev/mizzen/internal/runtime/runtimetest"
)

// uniqueNode returns a node name no other test (or earlier run) uses, so
// tests sharing the Docker daemon each see only their own containers.
func uniqueNode(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// agentArgs are the flags of an agent (or a server's agent) at ip.
func agentArgs(t *testing.T, node, ip string) []string {
	return []string{
		"--node-name", node,
		"--node-ip", ip,
		"--kubelet-port", strconv.Itoa(freePort(t)),
		"--read-only-port", strconv.Itoa(freePort(t)),
	}
}

// startNode starts a server that runs its own agent: a one-node cluster
// on the host's Docker, with the test image present.
func startNode(t *testing.T, extra ...string) *server {
	t.Helper()
	requireDocker(t)
	s := launchServer(t, true, "127.0.0.1", extra...)
	s.waitNodeReady(s.node, 30*time.Second)
	return s
}

// startLabNode is startNode with the server on the lab bridge, so that
// agents started with s.startAgent run in lab hosts of their own.
func startLabNode(t *testing.T, extra ...string) *server {
	t.Helper()
	requireDocker(t)
	requireLab(t)
	s := launchServer(t, true, labGateway, extra...)
	s.waitNodeReady(s.node, 30*time.Second)
	return s
}

// startLabServer is startServer on the lab bridge.
func startLabServer(t *testing.T, extra ...string) *server {
	t.Helper()
	requireLab(t)
	return launchServer(t, false, labGateway, extra...)
}

// requireDocker makes sure Docker answers and the busybox test image
// (runtimetest.BusyboxImage) exists.
func requireDocker(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		runtimetest.SkipOrFail(t, "docker is not installed (run scripts/prereqs)")
	}
	if out, err := exec.Command("docker", "info").CombinedOutput(); err != nil {
		runtimetest.SkipOrFail(t, "docker is not running (run scripts/prereqs): %v\n%s", err, out)
	}
	rt, err := docker.New(docker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	runtimetest.EnsureBusybox(t, rt)
}

// nodeContainers lists the IDs of the containers of node (all states).
func nodeContainers(t *testing.T, node string, filters ...string) []string {
	t.Helper()
	args := []string{"ps", "-aq", "--no-trunc", "--filter", "label=io.mizzen.node=" + node}
	for _, f := range filters {
		args = append(args, "--filter", f)
	}
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker ps: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

// removeNodeContainers removes whatever a test's node left running.
func removeNodeContainers(t *testing.T, node string) {
	ids := nodeContainers(t, node)
	if len(ids) == 0 {
		return
	}
	if out, err := exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).CombinedOutput(); err != nil {
		t.Errorf("docker rm: %v\n%s", err, out)
	}
}

func dumpContainers(t *testing.T, node string) {
	out, _ := exec.Command("docker", "ps", "-a", "--filter", "label=io.mizzen.node="+node,
		"--format", "{{.ID}} {{.Names}} {{.Status}} {{.Image}}").CombinedOutput()
	t.Logf("docker ps -a (node %s):\n%s", node, out)
}

// waitNodeReady waits until the node is registered and Ready.
func (s *server) waitNodeReady(node string, timeout time.Duration) {
	s.t.Helper()
	eventually(s.t, timeout, func() error {
		out, err := s.kubectlErr("get", "node", node, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if out != "True" {
			return fmt.Errorf("node %s Ready=%q", node, out)
		}
		return nil
	})
}

// token is the server's full join token.
func (s *server) token() string {
	b, err := os.ReadFile(filepath.Join(s.dataDir, "server", "token"))
	if err != nil {
		s.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// podJSON is the part of a pod the tests read.
type podJSON struct {
	Metadata struct {
		Name string `json:"name"`
		UID  string `json:"uid"`
	} `json:"metadata"`
	Spec struct {
		NodeName string `json:"nodeName"`
	} `json:"spec"`
	Status struct {
		Phase      string `json:"phase"`
		PodIP      string `json:"podIP"`
		Conditions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
		ContainerStatuses []struct {
			Name         string          `json:"name"`
			Ready        bool            `json:"ready"`
			RestartCount int             `json:"restartCount"`
			ContainerID  string          `json:"containerID"`
			State        json.RawMessage `json:"state"`
			LastState    json.RawMessage `json:"lastState"`
		} `json:"containerStatuses"`
	} `json:"status"`
}

func (p podJSON) ready() bool {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

// pods returns the pods of namespace matching selector.
func (s *server) pods(namespace, selector string) []podJSON {
	s.t.Helper()
	args := []string{"get", "pods", "-n", namespace, "-o", "json"}
	if selector != "" {
		args = append(args, "-l", selector)
	}
	out, err := s.kubectlErr(args...)
	if err != nil {
		s.t.Fatalf("kubectl get pods: %v\n%s", err, out)
	}
	var list struct {
		Items []podJSON `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		s.t.Fatalf("decode pods: %v\n%s", err, out)
	}
	return list.Items
}

// agentProc is one `mizzen agent` process.
type agentProc struct {
	proc
	node string
	dir  string // its --data-dir
	ip   string // its node IP (its lab host's address when in the lab)
}

// startAgent starts an agent joining s as node, with its own data dir.
func (s *server) startAgent(node, token string, extra ...string) *agentProc {
	s.t.Helper()
	a := s.newAgent(node, token, extra...)
	a.start()
	return a
}

// newAgent prepares an agent process without starting it.
func (s *server) newAgent(node, token string, extra ...string) *agentProc {
	s.t.Helper()
	a := &agentProc{proc: proc{t: s.t, name: "agent " + node}, node: node, dir: s.t.TempDir(), ip: "127.0.0.1"}
	if s.host == labGateway {
		// Each agent is a host of its own, as agents are.
		a.netns, a.ip = labHost(s.t)
	}
	a.args = append(append([]string{"agent", "--server", s.url(), "--token", token,
		"--data-dir", a.dir, "--debug"}, agentArgs(s.t, node, a.ip)...), extra...)
	s.t.Cleanup(func() {
		if s.t.Failed() {
			s.t.Logf("agent %s log:\n%s", node, a.logs())
			dumpContainers(s.t, node)
		}
		if a.stop() {
			// Stopped by SIGTERM: a clean exit, with no errors logged.
			if code := a.cmd.ProcessState.ExitCode(); code != 0 {
				s.t.Errorf("agent %s exited with %d on SIGTERM:\n%s", node, code, a.logs())
			}
			for _, l := range strings.Split(a.logs(), "\n") {
				if strings.Contains(l, "level=error") || strings.HasPrefix(l, "panic") {
					s.t.Errorf("agent %s logged an error: %s", node, l)
				}
			}
		}
		removeNodeContainers(s.t, node)
	})
	return a
}

func (a *agentProc) start() { a.launch() }

// wait waits for the agent to exit and returns its exit code.
func (a *agentProc) wait(timeout time.Duration) int {
	a.t.Helper()
	select {
	case <-a.exited:
		return a.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		a.t.Fatalf("agent still running after %v:\n%s", timeout, a.logs())
	}
	return -1
}

// kill stops the agent with SIGKILL, as a crash would.
func (a *agentProc) kill() {
	syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
	<-a.exited
}

func (a *agentProc) dataDir() string { return a.dir }
