package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mizzen-dev/mizzen/internal/runtime/runtimetest"
)

// TestAgentJoinsAndSurvivesACrash joins a separate agent process with the
// token, refuses a wrong token and a wrong CA hash, holds node credentials
// to their own node, and checks that an agent killed with SIGKILL and
// started again adopts its pods: no new containers, no restarts.
func TestAgentJoinsAndSurvivesACrash(t *testing.T) {
	// The server runs its own agent: two nodes share the Docker daemon,
	// the agent in a lab host (network namespace) of its own.
	s := startLabNode(t)
	token := s.token()

	// A wrong secret and a wrong CA hash are refused, and the agent exits.
	hash, rest, _ := strings.Cut(strings.TrimPrefix(token, "K10"), "::")
	bad := s.startAgent(uniqueNode("bad"), "K10"+hash+"::server:wrongsecret")
	if code := bad.wait(30 * time.Second); code == 0 || !strings.Contains(bad.logs(), "refused") {
		t.Fatalf("agent with a wrong secret: exit %d\n%s", code, bad.logs())
	}
	other := strings.Repeat("0", len(hash))
	badCA := s.startAgent(uniqueNode("badca"), "K10"+other+"::"+rest)
	if code := badCA.wait(30 * time.Second); code == 0 || !strings.Contains(badCA.logs(), "CA") {
		t.Fatalf("agent with a wrong CA hash: exit %d\n%s", code, badCA.logs())
	}

	// An airgap bundle in DATA/agent/images is loaded at start.
	node := uniqueNode("worker")
	a := s.newAgent(node, token, "--node-label", "tier=edge")
	airgap := "mizzen-test/airgap:" + node
	bundle := filepath.Join(a.dataDir(), "agent", "images", "bundle.tar")
	for _, args := range [][]string{
		{"tag", runtimetest.BusyboxImage, airgap},
		{"save", "-o", bundle, airgap},
		{"rmi", airgap},
	} {
		if err := os.MkdirAll(filepath.Dir(bundle), 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
			t.Fatalf("docker %v: %v\n%s", args, err, out)
		}
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", airgap).Run() })
	a.start()
	s.waitNodeReady(node, 60*time.Second)
	if out := s.kubectl("get", "node", node, "-o", "jsonpath={.metadata.labels.tier}/{.status.nodeInfo.containerRuntimeVersion}"); !strings.HasPrefix(out, "edge/docker://") {
		t.Fatalf("node labels/nodeInfo: %q", out)
	}

	// Node credentials may change their own Node but not another's.
	fakeOther := `{"apiVersion":"v1","kind":"Node","metadata":{"name":"` + uniqueNode("other") + `"}}`
	if out, err := s.kubectlIn(fakeOther, "create", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	tlsDir := filepath.Join(a.dataDir(), "agent", "tls")
	asNode := func(args ...string) (string, error) {
		cmd := exec.Command(kubectlPath(t), append([]string{"--server", s.url(),
			"--certificate-authority", filepath.Join(tlsDir, "ca.crt"),
			"--client-certificate", filepath.Join(tlsDir, "client.crt"),
			"--client-key", filepath.Join(tlsDir, "client.key")}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := asNode("label", "node", node, "mizzen.test/self=yes"); err != nil {
		t.Fatalf("node labelling itself: %v\n%s", err, out)
	}
	otherNode := nodeName(fakeOther)
	if out, err := asNode("label", "node", otherNode, "mizzen.test/hijack=yes"); err == nil || !strings.Contains(out, "Forbidden") {
		t.Fatalf("node labelling another node: %v\n%s", err, out)
	}
	if out, err := asNode("delete", "node", otherNode); err == nil || !strings.Contains(out, "Forbidden") {
		t.Fatalf("node deleting another node: %v\n%s", err, out)
	}

	// Pods on the agent, then a crash and a restart of the agent.
	manifest := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: steady}
spec:
  replicas: 2
  selector: {matchLabels: {app: steady}}
  template:
    metadata: {labels: {app: steady}}
    spec:
      terminationGracePeriodSeconds: 1
      nodeSelector: {kubernetes.io/hostname: %s}
      containers:
      - name: app
        image: %s
        imagePullPolicy: IfNotPresent
        command: ["sleep", "3600"]
`, node, runtimetest.BusyboxImage)
	if out, err := s.kubectlIn(manifest, "apply", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	s.kubectl("rollout", "status", "deployment/steady", "--timeout", "60s")
	before := nodeContainers(t, node)
	if len(before) != 4 {
		t.Fatalf("%d containers, want 2 sandboxes + 2 apps", len(before))
	}
	a.kill()
	a.start()
	// A pod created after the restart running means the new agent has
	// synced everything it found.
	probe := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"after-restart"},"spec":{"nodeName":%q,"terminationGracePeriodSeconds":1,"containers":[{"name":"app","image":%q,"imagePullPolicy":"IfNotPresent","command":["sleep","3600"]}]}}`, node, runtimetest.BusyboxImage)
	if out, err := s.kubectlIn(probe, "create", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	s.kubectl("wait", "pod/after-restart", "--for=condition=Ready", "--timeout=60s")
	after := nodeContainers(t, node)
	if len(after) != 6 {
		t.Fatalf("%d containers after the restart, want the 4 adopted + 2 new", len(after))
	}
	for _, id := range before {
		if !strings.Contains(strings.Join(after, " "), id) {
			t.Fatalf("container %s was replaced", id)
		}
	}
	for _, p := range s.pods("default", "app=steady") {
		if p.Status.ContainerStatuses[0].RestartCount != 0 || !p.ready() {
			t.Fatalf("pod %s: restartCount %d ready %v", p.Metadata.Name, p.Status.ContainerStatuses[0].RestartCount, p.ready())
		}
	}
	// The server's own node kept running nothing of these: each agent
	// manages only the containers labelled with its node.
	if ids := nodeContainers(t, s.node); len(ids) != 0 {
		t.Fatalf("the server's node has %d containers", len(ids))
	}

	// The image from the airgap bundle runs with pull policy Never.
	pod := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"airgap"},"spec":{"nodeName":%q,"terminationGracePeriodSeconds":1,"containers":[{"name":"app","image":%q,"imagePullPolicy":"Never","command":["sleep","3600"]}]}}`, node, airgap)
	if out, err := s.kubectlIn(pod, "create", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	s.kubectl("wait", "pod/airgap", "--for=condition=Ready", "--timeout=60s")
}

// nodeName is the name of a node JSON object.
func nodeName(obj string) string {
	_, rest, _ := strings.Cut(obj, `"name":"`)
	name, _, _ := strings.Cut(rest, `"`)
	return name
}

// TestAgentWithoutDockerIsNotReady registers a node whose Docker daemon
// does not answer: it is NotReady, saying why, and the agent keeps running.
func TestAgentWithoutDockerIsNotReady(t *testing.T) {
	s := startServer(t)
	node := uniqueNode("nodocker")
	a := s.startAgent(node, s.token(), "--docker-host", "unix://"+filepath.Join(t.TempDir(), "no-docker.sock"))
	eventually(t, 30*time.Second, func() error {
		out, err := s.kubectlErr("get", "node", node, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}/{.status.conditions[?(@.type=="Ready")].reason}/{.status.conditions[?(@.type=="Ready")].message}`)
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if !strings.HasPrefix(out, "False/KubeletNotReady/container runtime is down") {
			return fmt.Errorf("Ready condition %q", out)
		}
		return nil
	})
	select {
	case <-a.exited:
		t.Fatalf("agent exited without Docker:\n%s", a.logs())
	default:
	}
}
