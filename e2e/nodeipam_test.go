package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

func nodeJSON(name string) string {
	return fmt.Sprintf(`{"apiVersion":"v1","kind":"Node","metadata":{"name":%q,"labels":{"kubernetes.io/hostname":%q}}}`, name, name)
}

// waitPodCIDR waits until node has a podCIDR in the default cluster CIDR
// and returns it.
func (s *server) waitPodCIDR(t *testing.T, node string) string {
	t.Helper()
	re := regexp.MustCompile(`^10\.42\.\d{1,3}\.0/24$`)
	var cidr string
	eventually(t, 20*time.Second, func() error {
		cidr = s.kubectl("get", "node", node, "-o", "jsonpath={.spec.podCIDR}")
		if !re.MatchString(cidr) {
			return fmt.Errorf("node %s: podCIDR %q", node, cidr)
		}
		if all := s.kubectl("get", "node", node, "-o", "jsonpath={.spec.podCIDRs}"); all != `["`+cidr+`"]` {
			return fmt.Errorf("node %s: podCIDRs %s, podCIDR %s", node, all, cidr)
		}
		return nil
	})
	return cidr
}

func TestNodeIPAMGivesEachNodeARangeAndReusesFreedOnes(t *testing.T) {
	s := startServer(t)
	s.kubectlInOK(nodeJSON("ipam-1")+"\n"+nodeJSON("ipam-2"), "create", "-f", "-")
	a, b := s.waitPodCIDR(t, "ipam-1"), s.waitPodCIDR(t, "ipam-2")
	if a == b {
		t.Fatalf("both nodes got %s", a)
	}
	s.kubectl("delete", "node", "ipam-1")
	s.kubectlInOK(nodeJSON("ipam-3"), "create", "-f", "-")
	if c := s.waitPodCIDR(t, "ipam-3"); c != a {
		t.Fatalf("new node got %s, want the freed %s (ipam-2 has %s)", c, a, b)
	}
	// A range once set stays: the API refuses to move it.
	out, err := s.kubectlErr("patch", "node", "ipam-2", "--type=merge", "-p", `{"spec":{"podCIDR":"10.42.200.0/24","podCIDRs":["10.42.200.0/24"]}}`)
	if err == nil || !strings.Contains(out, "podCIDR") {
		t.Fatalf("moving a podCIDR: %v\n%s", err, out)
	}
}

func TestNodeIPAMReportsAFullClusterCIDR(t *testing.T) {
	s := startServer(t, "--cluster-cidr", "10.99.0.0/24")
	s.kubectlInOK(nodeJSON("first"), "create", "-f", "-")
	eventually(t, 20*time.Second, func() error {
		if c := s.kubectl("get", "node", "first", "-o", "jsonpath={.spec.podCIDR}"); c != "10.99.0.0/24" {
			return fmt.Errorf("podCIDR %q", c)
		}
		return nil
	})
	s.kubectlInOK(nodeJSON("second"), "create", "-f", "-")
	eventually(t, 20*time.Second, func() error {
		out := s.kubectl("describe", "node", "second")
		if !strings.Contains(out, "CIDRNotAvailable") || !strings.Contains(out, "Node second status is now: CIDRNotAvailable") {
			return fmt.Errorf("no CIDRNotAvailable event:\n%s", out)
		}
		return nil
	})
	s.kubectl("delete", "node", "first")
	eventually(t, 20*time.Second, func() error {
		if c := s.kubectl("get", "node", "second", "-o", "jsonpath={.spec.podCIDR}"); c != "10.99.0.0/24" {
			return fmt.Errorf("podCIDR %q after the range was freed", c)
		}
		return nil
	})
}

// TestPodGCDeletesPodsOfDeletedNodes waits out Kubernetes' default
// quarantine (40 s) and collection period (20 s), which the server uses.
func TestPodGCDeletesPodsOfDeletedNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("waits about a minute for pod GC's quarantine")
	}
	s := startServer(t)
	s.kubectlInOK(nodeJSON("gc-node"), "create", "-f", "-")
	s.kubectlInOK(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"orphan"},"spec":{"nodeName":"gc-node","containers":[{"name":"c","image":"busybox"}]}}`, "create", "-f", "-")
	s.kubectlInOK(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"kept"},"spec":{"nodeName":"other","containers":[{"name":"c","image":"busybox"}]}}`, "create", "-f", "-")
	s.kubectlInOK(nodeJSON("other"), "create", "-f", "-")
	s.kubectl("delete", "node", "gc-node")
	eventually(t, 90*time.Second, func() error {
		if out, err := s.kubectlErr("get", "pod", "orphan", "-o", "name"); err == nil {
			return fmt.Errorf("orphaned pod still there: %s", out)
		}
		return nil
	})
	if out := s.kubectl("get", "pod", "kept", "-o", "jsonpath={.status.phase}"); out == "Failed" {
		t.Fatalf("pod on a live node was failed")
	}
}
