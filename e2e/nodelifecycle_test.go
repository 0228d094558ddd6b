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
	now := time.Now().UTC().Format(time.RFC3339)
	s.kubectl("patch", "node", name, "--subresource=status", "--type=merge", "-p", fmt.Sprintf(
		`{"status":{"capacity":{"cpu":"2","memory":"4Gi","pods":"110"},"allocatable":{"cpu":"2","memory":"4Gi","pods":"110"},`+
			`"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status","lastHeartbeatTime":%q,"lastTransitionTime":%q}]}}`, now, now))
	micro := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	lease := fmt.Sprintf(`{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":%q,"namespace":"kube-node-lease"},"spec":{"holderIdentity":%q,"leaseDurationSeconds":40,"renewTime":%q}}`, name, name, micro)
	s.kubectlInOK(lease, "apply", "-f", "-")
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
