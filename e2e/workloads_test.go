package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// markPodsReady acts as the kubelets of the fake nodes: every bound pod
// of the selector that is not Ready becomes Running and Ready.
func (s *server) markPodsReady(selector string) error {
	out, err := s.kubectlErr("get", "pods", "-l", selector, "-o",
		`jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase} {.metadata.deletionTimestamp}{"\n"}{end}`)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[2] == "Running" {
			continue // unbound, already running, or terminating
		}
		now := time.Now().UTC().Format(time.RFC3339)
		if _, err := s.kubectlErr("patch", "pod", f[0], "--subresource=status", "--type=merge", "-p",
			fmt.Sprintf(`{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True","lastTransitionTime":%q}]}}`, now)); err != nil {
			return err
		}
	}
	return nil
}

// finishTerminating acts as the kubelets of the fake nodes for pods being
// deleted: their containers have stopped, so they go.
func (s *server) finishTerminating(selector string) error {
	out, err := s.kubectlErr("get", "pods", "-l", selector, "-o",
		`jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{"\n"}{end}`)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			if out, err := s.kubectlErr("delete", "pod", f[0], "--grace-period=0", "--force", "--wait=false"); err != nil && !strings.Contains(out, "NotFound") {
				return fmt.Errorf("%v: %s", err, out)
			}
		}
	}
	return nil
}

// podsPerNode counts the selector's pods on each node.
func (s *server) podsPerNode(selector string) map[string]int {
	out := s.kubectl("get", "pods", "-l", selector, "-o", `jsonpath={range .items[*]}{.spec.nodeName}{"\n"}{end}`)
	counts := map[string]int{}
	for _, n := range strings.Fields(out) {
		counts[n]++
	}
	return counts
}

func TestDeploymentSpreadsAndRollsWithinSurge(t *testing.T) {
	s := startServer(t)
	for i := 1; i <= 5; i++ {
		s.fakeNode(fmt.Sprintf("n%d", i))
	}
	s.kubectl("create", "deployment", "web", "--image=busybox:1.36", "--replicas=10")
	eventually(t, 60*time.Second, func() error {
		counts := s.podsPerNode("app=web")
		total := 0
		for n, c := range counts {
			if n != "" && c > 3 {
				return fmt.Errorf("node %s has %d of 10 pods: %v", n, c, counts)
			}
			total += c
		}
		if total != 10 || counts[""] != 0 || len(counts) != 5 {
			return fmt.Errorf("pods per node %v", counts)
		}
		return s.markPodsReady("app=web")
	})
	eventually(t, 30*time.Second, func() error {
		if got := s.kubectl("get", "deploy", "web", "-o", "jsonpath={.status.availableReplicas}"); got != "10" {
			return fmt.Errorf("available %q", got)
		}
		return nil
	})
	// Defaults: maxSurge 25% (3), maxUnavailable 25% (2).
	s.kubectl("set", "image", "deployment/web", "busybox=busybox:1.37")
	maxPods := 0
	eventually(t, 90*time.Second, func() error {
		out := s.kubectl("get", "pods", "-l", "app=web", "-o", `jsonpath={range .items[*]}{.metadata.deletionTimestamp}{"\n"}{end}`)
		live := 0
		for _, l := range strings.Split(out, "\n") {
			if strings.TrimSpace(l) == "" {
				live++
			}
		}
		live-- // the trailing line
		maxPods = max(maxPods, live)
		if err := s.markPodsReady("app=web"); err != nil {
			return err
		}
		if err := s.finishTerminating("app=web"); err != nil {
			return err
		}
		st := s.kubectl("get", "deploy", "web", "-o", "jsonpath={.status.updatedReplicas} {.status.availableReplicas} {.status.replicas}")
		if st != "10 10 10" {
			return fmt.Errorf("rollout at %q", st)
		}
		return nil
	})
	if maxPods > 13 {
		t.Fatalf("%d pods at once during the rollout: more than replicas+maxSurge (13)", maxPods)
	}
	out := s.kubectl("rollout", "status", "deployment/web", "--timeout=20s")
	mustContain(t, out, "successfully rolled out")
	// Deleting the Deployment removes its ReplicaSets and pods.
	s.kubectl("delete", "deployment", "web")
	eventually(t, 30*time.Second, func() error {
		if err := s.finishTerminating("app=web"); err != nil {
			return err
		}
		if out := s.kubectl("get", "rs,pods", "-l", "app=web", "-o", "name"); strings.TrimSpace(out) != "" {
			return fmt.Errorf("left behind:\n%s", out)
		}
		return nil
	})
}
