package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mizzen-dev/mizzen/internal/runtime/runtimetest"
)

// TestPodStartLatency measures, on a server with a separate agent: the
// time from `kubectl apply` of a 1-replica Deployment to its pod Running
// and Ready (20 runs, p50 and p99); the time for 30 pods to all run; and
// the agent's memory and CPU idling with those 30 pods. It runs only with
// MIZZEN_E2E_PERF=1 and asserts no timing.
func TestPodStartLatency(t *testing.T) {
	if os.Getenv("MIZZEN_E2E_PERF") != "1" {
		t.Skip("set MIZZEN_E2E_PERF=1 to measure")
	}
	requireDocker(t)
	s := startServer(t)
	node := uniqueNode("perf")
	a := s.startAgent(node, s.token())
	s.waitNodeReady(node, 60*time.Second)
	c := s.adminClient(t)
	ready := func(selector string, want int) (int, bool) {
		resp, err := c.Get(s.url() + "/api/v1/namespaces/default/pods?labelSelector=" + selector)
		if err != nil {
			return 0, false
		}
		defer resp.Body.Close()
		var list struct {
			Items []podJSON `json:"items"`
		}
		if json.NewDecoder(resp.Body).Decode(&list) != nil {
			return 0, false
		}
		n := 0
		for _, p := range list.Items {
			if p.Status.Phase == "Running" && p.ready() {
				n++
			}
		}
		return n, n >= want
	}
	deployment := func(name string, replicas int) string {
		return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %s}
spec:
  replicas: %d
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: %s
        imagePullPolicy: IfNotPresent
        command: ["sleep", "3600"]
`, name, replicas, name, name, runtimetest.BusyboxImage)
	}

	var lat []time.Duration
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("lat-%d", i)
		start := time.Now()
		if out, err := s.kubectlIn(deployment(name, 1), "apply", "-f", "-"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		eventually(t, 60*time.Second, func() error {
			if _, ok := ready("app="+name, 1); !ok {
				return fmt.Errorf("%s not ready", name)
			}
			return nil
		})
		lat = append(lat, time.Since(start))
		s.kubectl("delete", "deployment", name, "--wait=false")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("pod start latency (kubectl apply → Running and Ready), 20 runs: p50 %v, p99 %v, min %v",
		lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), lat[0].Round(time.Millisecond))
	eventually(t, 60*time.Second, func() error {
		if out := s.kubectl("get", "pods", "-o", "name"); strings.TrimSpace(out) != "" {
			return fmt.Errorf("pods left")
		}
		return nil
	})

	start := time.Now()
	s.kubectlIn(deployment("thirty", 30), "apply", "-f", "-")
	eventually(t, 120*time.Second, func() error {
		if n, ok := ready("app=thirty", 30); !ok {
			return fmt.Errorf("%d of 30 ready", n)
		}
		return nil
	})
	t.Logf("30 pods on one node: all Running and Ready in %v", time.Since(start).Round(time.Millisecond))

	time.Sleep(10 * time.Second) // settle before measuring idle
	pid := a.cmd.Process.Pid
	cpu0, wall0 := cpuTicks(t, pid), time.Now()
	time.Sleep(30 * time.Second)
	cpu1, wall1 := cpuTicks(t, pid), time.Now()
	const hz = 100 // USER_HZ
	pct := float64(cpu1-cpu0) / hz / wall1.Sub(wall0).Seconds() * 100
	t.Logf("agent idle with 30 pods: RSS %.1f MiB (anonymous %.1f MiB, file %.1f MiB), CPU %.2f %% of one core (30 s)",
		float64(rssKiB(t, pid, "VmRSS:"))/1024, float64(rssKiB(t, pid, "RssAnon:"))/1024, float64(rssKiB(t, pid, "RssFile:"))/1024, pct)
}

// rssKiB reads a memory field (VmRSS:, RssAnon:, RssFile:) of a process.
func rssKiB(t *testing.T, pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// cpuTicks reads a process's user+system CPU time in clock ticks.
func cpuTicks(t *testing.T, pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	s := string(b)
	fields := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	u, _ := strconv.Atoi(fields[11])
	k, _ := strconv.Atoi(fields[12])
	return u + k
}
