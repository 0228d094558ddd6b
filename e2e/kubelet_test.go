package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mizzen-dev/mizzen/internal/runtime/runtimetest"
)

const webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: httpd
        image: ` + runtimetest.BusyboxImage + `
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "mkdir -p /www && echo hello > /www/index.html && echo serving && exec httpd -f -p 8080 -h /www"]
        ports:
        - {name: http, containerPort: 8080}
        readinessProbe:
          httpGet: {path: /index.html, port: http}
          periodSeconds: 1
`

// TestKubeletRunsADeployment runs httpd pods on Docker: Ready through
// their readiness probes, with logs and exec through the API server, a
// killed container restarted, and every container gone with the
// Deployment.
func TestKubeletRunsADeployment(t *testing.T) {
	s := startNode(t)
	if _, err := s.kubectlIn(webDeployment, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	s.kubectl("rollout", "status", "deployment/web", "--timeout", "90s")
	var pods []podJSON
	eventually(t, 30*time.Second, func() error {
		pods = s.pods("default", "app=web")
		if len(pods) != 3 {
			return fmt.Errorf("%d pods", len(pods))
		}
		for _, p := range pods {
			if p.Status.Phase != "Running" || !p.ready() || p.Status.PodIP == "" || p.Spec.NodeName != s.node {
				return fmt.Errorf("pod %s: phase %s ready %v ip %q node %q", p.Metadata.Name, p.Status.Phase, p.ready(), p.Status.PodIP, p.Spec.NodeName)
			}
		}
		return nil
	})
	name := pods[0].Metadata.Name

	// Logs and exec, through the API server's proxy to the kubelet.
	eventually(t, 10*time.Second, func() error {
		if out := s.kubectl("logs", name); strings.TrimSpace(out) != "serving" {
			return fmt.Errorf("kubectl logs: %q", out)
		}
		return nil
	})
	if out := s.kubectl("exec", name, "--", "cat", "/etc/hostname"); strings.TrimSpace(out) != name {
		t.Fatalf("kubectl exec cat /etc/hostname: %q, want %q", out, name)
	}
	if out, err := s.kubectlIn("over stdin\n", "exec", "-i", name, "--", "cat"); err != nil || out != "over stdin\n" {
		t.Fatalf("kubectl exec -i cat: %q %v", out, err)
	}
	if out, err := s.kubectlErr("exec", name, "--", "sh", "-c", "exit 3"); err == nil || !strings.Contains(out, "exit code 3") {
		t.Fatalf("kubectl exec exit 3: %v %q", err, out)
	}

	// A container killed behind the kubelet's back is restarted.
	id := strings.TrimPrefix(pods[0].Status.ContainerStatuses[0].ContainerID, "docker://")
	if out, err := exec.Command("docker", "kill", id).CombinedOutput(); err != nil {
		t.Fatalf("docker kill: %v\n%s", err, out)
	}
	eventually(t, 30*time.Second, func() error {
		for _, p := range s.pods("default", "app=web") {
			if p.Metadata.Name != name {
				continue
			}
			cs := p.Status.ContainerStatuses[0]
			if cs.RestartCount != 1 || !cs.Ready {
				return fmt.Errorf("restartCount %d ready %v", cs.RestartCount, cs.Ready)
			}
			return nil
		}
		return fmt.Errorf("pod %s gone", name)
	})

	// The read-only port lists the pods this kubelet runs.
	ro := s.readOnlyPort()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%s/pods", ro))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var list struct {
		Kind  string `json:"kind"`
		Items []struct {
			Metadata struct{ Name string } `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil || list.Kind != "PodList" || len(list.Items) != 3 {
		t.Fatalf("read-only /pods: %v %s", err, body)
	}

	s.kubectl("delete", "deployment", "web")
	eventually(t, 60*time.Second, func() error {
		if ids := nodeContainers(t, s.node); len(ids) != 0 {
			return fmt.Errorf("%d containers left", len(ids))
		}
		if out := s.kubectl("get", "pods", "-o", "name"); strings.TrimSpace(out) != "" {
			return fmt.Errorf("pods left: %s", out)
		}
		return nil
	})
}

// readOnlyPort is the --read-only-port the server's agent was given.
func (s *server) readOnlyPort() string {
	i := slices.Index(s.args, "--read-only-port")
	if i < 0 {
		s.t.Fatal("no --read-only-port")
	}
	return s.args[i+1]
}

const restartPods = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  greeting: hello from a configmap
---
apiVersion: v1
kind: Pod
metadata:
  name: liveness
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: ` + runtimetest.BusyboxImage + `
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; exec sleep 600"]
    livenessProbe:
      exec: {command: ["cat", "/tmp/healthy"]}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: crash
spec:
  containers:
  - name: app
    image: ` + runtimetest.BusyboxImage + `
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo crashing; exit 1"]
---
apiVersion: v1
kind: Pod
metadata:
  name: config
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: ` + runtimetest.BusyboxImage + `
    imagePullPolicy: IfNotPresent
    command: ["sleep", "600"]
    env:
    - name: GREETING
      valueFrom:
        configMapKeyRef: {name: settings, key: greeting}
    - name: MY_POD
      valueFrom:
        fieldRef: {fieldPath: metadata.name}
    volumeMounts:
    - {name: settings, mountPath: /etc/settings}
  volumes:
  - name: settings
    configMap: {name: settings}
`

// TestKubeletRestartsAndConfig covers a failing liveness probe, a crash
// loop and a ConfigMap seen as env and as a volume.
func TestKubeletRestartsAndConfig(t *testing.T) {
	s := startNode(t)
	if out, err := s.kubectlIn(restartPods, "apply", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	status := func(pod string) podJSON {
		for _, p := range s.pods("default", "") {
			if p.Metadata.Name == pod {
				return p
			}
		}
		t.Fatalf("pod %s not found", pod)
		return podJSON{}
	}
	eventually(t, 60*time.Second, func() error {
		p := status("liveness")
		if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].RestartCount < 1 {
			return fmt.Errorf("liveness: not restarted yet: %+v", p.Status.ContainerStatuses)
		}
		return nil
	})
	if out := s.kubectl("get", "events", "--field-selector", "involvedObject.name=liveness"); !strings.Contains(out, "Unhealthy") || !strings.Contains(out, "failed liveness probe, will be restarted") {
		t.Fatalf("liveness events:\n%s", out)
	}
	eventually(t, 60*time.Second, func() error {
		p := status("crash")
		if len(p.Status.ContainerStatuses) == 0 || !strings.Contains(string(p.Status.ContainerStatuses[0].State), "CrashLoopBackOff") {
			return fmt.Errorf("crash: %+v", p.Status.ContainerStatuses)
		}
		return nil
	})
	if out := s.kubectl("get", "pod", "crash"); !strings.Contains(out, "CrashLoopBackOff") && !strings.Contains(out, "Error") {
		t.Fatalf("kubectl get pod crash:\n%s", out)
	}
	if out := s.kubectl("logs", "crash", "--previous"); strings.TrimSpace(out) != "crashing" {
		t.Fatalf("logs --previous: %q", out)
	}
	s.kubectl("wait", "pod/config", "--for=condition=Ready", "--timeout=60s")
	if out := s.kubectl("exec", "config", "--", "cat", "/etc/settings/greeting"); out != "hello from a configmap" {
		t.Fatalf("configmap volume: %q", out)
	}
	if out := s.kubectl("exec", "config", "--", "sh", "-c", "echo $GREETING/$MY_POD"); strings.TrimSpace(out) != "hello from a configmap/config" {
		t.Fatalf("env: %q", out)
	}
	// A changed ConfigMap reaches the volume.
	s.kubectl("patch", "configmap", "settings", "--type=merge", "-p", `{"data":{"greeting":"changed"}}`)
	eventually(t, 60*time.Second, func() error {
		if out, _ := s.kubectlErr("exec", "config", "--", "cat", "/etc/settings/greeting"); out != "changed" {
			return fmt.Errorf("volume still has %q", out)
		}
		return nil
	})
}

// TestKubeletStreamsAndHostNetwork follows logs, attaches, runs an
// interactive exec on a terminal, and runs a host network pod.
func TestKubeletStreamsAndHostNetwork(t *testing.T) {
	s := startNode(t)
	pods := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: ticker}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: %[1]s
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"]
---
apiVersion: v1
kind: Pod
metadata: {name: hostnet}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: %[1]s
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
`, runtimetest.BusyboxImage)
	if out, err := s.kubectlIn(pods, "apply", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	s.kubectl("wait", "pod/ticker", "pod/hostnet", "--for=condition=Ready", "--timeout=60s")

	// kubectl logs -f and kubectl attach stream lines as they are written.
	for _, args := range [][]string{{"logs", "-f", "ticker"}, {"attach", "ticker"}} {
		cmd := exec.Command(kubectlPath(t), append([]string{"--kubeconfig", s.kubeconfig}, args...)...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			defer close(lines)
			buf := make([]byte, 4096)
			var acc string
			for {
				n, err := out.Read(buf)
				acc += string(buf[:n])
				for {
					line, rest, ok := strings.Cut(acc, "\n")
					if !ok {
						break
					}
					lines <- line
					acc = rest
				}
				if err != nil {
					return
				}
			}
		}()
		seen := 0
		timeout := time.After(30 * time.Second)
		for seen < 10 {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("kubectl %v ended after %d lines", args, seen)
				}
				if strings.HasPrefix(l, "tick ") {
					seen++
				}
			case <-timeout:
				t.Fatalf("kubectl %v: %d lines in 30 s", args, seen)
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		for range lines {
		}
	}

	// kubectl exec -it on a terminal gets a TTY in the container.
	cmdline := fmt.Sprintf("%s --kubeconfig %s exec -it ticker -- sh -c '[ -t 0 ] && [ -t 1 ] && echo on-a-terminal'", kubectlPath(t), s.kubeconfig)
	out, err := exec.Command("script", "-qec", cmdline, "/dev/null").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "on-a-terminal") {
		t.Fatalf("kubectl exec -it tty: %v\n%q", err, out)
	}

	// A host network pod has the node's address and the host's name.
	if ip := s.kubectl("get", "pod", "hostnet", "-o", "jsonpath={.status.podIP}"); ip != "127.0.0.1" {
		t.Fatalf("host network pod IP %q, want the node's 127.0.0.1", ip)
	}
	host, _ := exec.Command("hostname").Output()
	if out := s.kubectl("exec", "hostnet", "--", "hostname"); strings.TrimSpace(out) != strings.TrimSpace(string(host)) {
		t.Fatalf("host network pod hostname %q, want %q", out, host)
	}
}
