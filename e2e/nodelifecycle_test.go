package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// fakeNode creates a Node that reports Ready with capacity, as an agent
// would, plus its heartbeat Lease.
func (s *server) fakeNode(name string, labels ...string) {
	s.t.Helper()
	lbl := `"kubernetes.io/hostname":"` + name + `"`
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		lbl += fmt.Sprintf(",%q:%q", k, v)
	}
	s.kubectlInOK(fmt.Sprintf(`{"apiVersion":"v1","kind":"Node","metadata":{"name":%q,"labels":{%s}}}`, name, lbl), "create", "-f", "-")
	s.heartbeat(name)
}

// heartbeat renews a fake node's Lease and Ready condition.
func (s *server) heartbeat(name string) {
	s.t.Helper()
	if err := s.heartbeatErr(name); err != nil {
		s.t.Fatal(err)
	}
}

// heartbeatErr is heartbeat for goroutines: it returns what failed.
func (s *server) heartbeatErr(name string) error {
	now := time.Now().UTC().Format(time.RFC3339)
	if out, err := s.kubectlErr("patch", "node", name, "--subresource=status", "--type=merge", "-p", fmt.Sprintf(
		`{"status":{"capacity":{"cpu":"2","memory":"4Gi","pods":"110"},"allocatable":{"cpu":"2","memory":"4Gi","pods":"110"},`+
			`"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status","lastHeartbeatTime":%q,"lastTransitionTime":%q}]}}`, now, now)); err != nil {
		return fmt.Errorf("heartbeat %s: %v: %s", name, err, out)
	}
	micro := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	lease := fmt.Sprintf(`{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":%q,"namespace":"kube-node-lease"},"spec":{"holderIdentity":%q,"leaseDurationSeconds":40,"renewTime":%q}}`, name, name, micro)
	if out, err := s.kubectlIn(lease, "apply", "-f", "-"); err != nil {
		return fmt.Errorf("lease %s: %v: %s", name, err, out)
	}
	return nil
}

// keepAlive heartbeats a fake node every second until the test ends.
func (s *server) keepAlive(name string) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	s.t.Cleanup(func() { close(done); <-stopped })
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Second):
				_ = s.heartbeatErr(name) // a missed beat shows as a failure below
			}
		}
	}()
}

func TestSilentNodeBecomesNotReadyAndItsPodsAreEvicted(t *testing.T) {
	s := startServer(t, "--node-monitor-grace-period", "3s", "--default-unreachable-toleration-seconds", "2")
	s.fakeNode("n1")
	s.kubectlInOK(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"busybox"}]}}`, "create", "-f", "-")
	mustContain(t, s.kubectl("get", "node", "n1"), "Ready")
	eventually(t, 30*time.Second, func() error {
		out := s.kubectl("get", "node", "n1", "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status} {.spec.taints[*].key}")
		if !strings.HasPrefix(out, "Unknown ") || !strings.Contains(out, "node.kubernetes.io/unreachable") {
			return fmt.Errorf("node: %q", out)
		}
		return nil
	})
	mustContain(t, s.kubectl("get", "node", "n1"), "NotReady")
	eventually(t, 30*time.Second, func() error {
		if ts := s.kubectl("get", "pod", "p", "-o", "jsonpath={.metadata.deletionTimestamp}"); ts == "" {
			return fmt.Errorf("pod not marked for deletion")
		}
		return nil
	})
	mustContain(t, s.kubectl("get", "events", "--field-selector", "involvedObject.name=p"), "TaintManagerEviction")
	// The node comes back: its taints go.
	s.heartbeat("n1")
	eventually(t, 30*time.Second, func() error {
		if taints := s.kubectl("get", "node", "n1", "-o", "jsonpath={.spec.taints}"); taints != "" {
			return fmt.Errorf("taints after recovery: %s", taints)
		}
		return nil
	})
}

func TestPodsOfALostNodeAreRecreatedElsewhere(t *testing.T) {
	s := startServer(t, "--node-monitor-grace-period", "3s", "--default-unreachable-toleration-seconds", "1")
	s.fakeNode("lost")
	s.kubectl("create", "deployment", "web", "--image=busybox", "--replicas=1")
	eventually(t, 30*time.Second, func() error {
		if got := s.podsPerNode("app=web"); got["lost"] != 1 {
			return fmt.Errorf("pods per node %v", got)
		}
		return nil
	})
	s.fakeNode("alive")
	s.keepAlive("alive")
	// "lost" never beats again: after the grace period it is unreachable,
	// its pod is evicted and the ReplicaSet's replacement lands on "alive".
	eventually(t, 60*time.Second, func() error {
		out := s.kubectl("get", "pods", "-l", "app=web", "-o", `jsonpath={range .items[*]}{.spec.nodeName}/{.metadata.deletionTimestamp}{"\n"}{end}`)
		if !strings.Contains(out, "alive/\n") {
			return fmt.Errorf("pods (node/deletionTimestamp):\n%s", out)
		}
		return nil
	})
	mustContain(t, s.kubectl("get", "nodes"), "NotReady")
}
