package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// addReadyNode creates a node standing in for an agent: cpu 2, memory
// 4Gi, 110 pods, Ready.
func (s *server) addReadyNode(t *testing.T, name string) {
	t.Helper()
	if out, err := s.kubectlIn(nodeJSON(name), "create", "-f", "-"); err != nil {
		t.Fatalf("create node %s: %v\n%s", name, err, out)
	}
	res := `{"cpu":"2","memory":"4Gi","pods":"110"}`
	s.kubectl("patch", "node", name, "--subresource=status", "--type=merge", "-p",
		`{"status":{"capacity":`+res+`,"allocatable":`+res+`,"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status"}]}}`)
}

// createSchedPod creates a pod with extra JSON fields in its spec.
func (s *server) createSchedPod(t *testing.T, name, spec string) {
	t.Helper()
	if spec != "" {
		spec = "," + spec
	}
	pod := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q,"labels":{"app":"sched"}},`+
		`"spec":{"containers":[{"name":"c","image":"busybox"}]%s}}`, name, spec)
	if out, err := s.kubectlIn(pod, "create", "-f", "-"); err != nil {
		t.Fatalf("create pod %s: %v\n%s", name, err, out)
	}
}

// nodeOf waits until pod is bound and returns its node.
func (s *server) nodeOf(t *testing.T, pod string) string {
	t.Helper()
	var node string
	eventually(t, 20*time.Second, func() error {
		node = s.kubectl("get", "pod", pod, "-o", "jsonpath={.spec.nodeName}")
		if node == "" {
			return fmt.Errorf("pod %s not bound", pod)
		}
		return nil
	})
	return node
}

func TestSchedulerPlacesPodsOnReadyNodes(t *testing.T) {
	s := startServer(t)
	for _, n := range []string{"sched-1", "sched-2", "sched-3"} {
		s.addReadyNode(t, n)
	}

	// Six pods spread over the three nodes.
	perNode := map[string]int{}
	for i := 0; i < 6; i++ {
		s.createSchedPod(t, fmt.Sprintf("spread-%d", i), "")
	}
	for i := 0; i < 6; i++ {
		perNode[s.nodeOf(t, fmt.Sprintf("spread-%d", i))]++
	}
	for n, c := range perNode {
		if c > 3 {
			t.Fatalf("node %s got %d of 6 pods: %v", n, c, perNode)
		}
	}
	events := s.kubectl("get", "events", "--field-selector", "involvedObject.name=spread-0,reason=Scheduled",
		"-o", "jsonpath={.items[*].message}")
	if want := "Successfully assigned default/spread-0 to "; !strings.HasPrefix(events, want) {
		t.Fatalf("Scheduled event %q, want %q...", events, want)
	}

	// A pod no node can hold stays Pending with FailedScheduling.
	s.createSchedPod(t, "huge", `"containers":[{"name":"c","image":"busybox","resources":{"requests":{"cpu":"100"}}}]`)
	eventually(t, 20*time.Second, func() error {
		msg := s.kubectl("get", "events", "--field-selector", "involvedObject.name=huge,reason=FailedScheduling",
			"-o", "jsonpath={.items[0].type} {.items[0].message}")
		if !strings.HasPrefix(msg, "Warning 0/3 nodes are available: 3 Insufficient cpu") {
			return fmt.Errorf("FailedScheduling event %q", msg)
		}
		cond := s.kubectl("get", "pod", "huge", "-o",
			`jsonpath={.status.phase} {.status.conditions[?(@.type=="PodScheduled")].status} {.status.conditions[?(@.type=="PodScheduled")].reason}`)
		if cond != "Pending False Unschedulable" {
			return fmt.Errorf("pod huge: %q", cond)
		}
		return nil
	})
	if out := s.kubectl("describe", "pod", "huge"); !strings.Contains(out, "FailedScheduling") {
		t.Fatalf("describe shows no FailedScheduling:\n%s", out)
	}

	// nodeSelector is honoured.
	s.kubectl("label", "node", "sched-2", "disk=ssd")
	s.createSchedPod(t, "ssd", `"nodeSelector":{"disk":"ssd"}`)
	if n := s.nodeOf(t, "ssd"); n != "sched-2" {
		t.Fatalf("pod with nodeSelector disk=ssd on %s", n)
	}

	// A NoSchedule taint keeps pods without a toleration away.
	s.kubectl("taint", "node", "sched-3", "dedicated=gpu:NoSchedule")
	for i := 0; i < 6; i++ {
		s.createSchedPod(t, fmt.Sprintf("taint-%d", i), "")
	}
	for i := 0; i < 6; i++ {
		if n := s.nodeOf(t, fmt.Sprintf("taint-%d", i)); n == "sched-3" {
			t.Fatalf("pod taint-%d placed on the tainted node", i)
		}
	}
	s.createSchedPod(t, "tolerant", `"nodeSelector":{"kubernetes.io/hostname":"sched-3"},`+
		`"tolerations":[{"key":"dedicated","operator":"Equal","value":"gpu","effect":"NoSchedule"}]`)
	if n := s.nodeOf(t, "tolerant"); n != "sched-3" {
		t.Fatalf("tolerating pod on %s", n)
	}

	// More room makes the pending pod schedulable: a node event requeues it.
	if out, err := s.kubectlIn(nodeJSON("sched-big"), "create", "-f", "-"); err != nil {
		t.Fatalf("create node: %v\n%s", err, out)
	}
	res := `{"cpu":"128","memory":"64Gi","pods":"110"}`
	s.kubectl("patch", "node", "sched-big", "--subresource=status", "--type=merge", "-p",
		`{"status":{"capacity":`+res+`,"allocatable":`+res+`,"conditions":[{"type":"Ready","status":"True"}]}}`)
	if n := s.nodeOf(t, "huge"); n != "sched-big" {
		t.Fatalf("pod huge on %s", n)
	}
}

func TestSchedulerAntiAffinityLeavesExcessPending(t *testing.T) {
	s := startServer(t)
	for _, n := range []string{"anti-1", "anti-2", "anti-3"} {
		s.addReadyNode(t, n)
	}
	anti := `"affinity":{"podAntiAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[` +
		`{"labelSelector":{"matchLabels":{"app":"sched"}},"topologyKey":"kubernetes.io/hostname"}]}}`
	for i := 0; i < 4; i++ {
		s.createSchedPod(t, fmt.Sprintf("anti-%d", i), anti)
	}
	eventually(t, 20*time.Second, func() error {
		out := s.kubectl("get", "pods", "-o", `jsonpath={range .items[*]}{.metadata.name}={.spec.nodeName}{"\n"}{end}`)
		nodes, pending := map[string]bool{}, 0
		for _, l := range strings.Fields(out) {
			name, node, _ := strings.Cut(l, "=")
			if node == "" {
				pending++
				msg := s.kubectl("get", "events", "--field-selector", "involvedObject.name="+name+",reason=FailedScheduling",
					"-o", "jsonpath={.items[0].message}")
				if want := "0/3 nodes are available: 3 node(s) didn't satisfy existing pods anti-affinity rules."; !strings.HasPrefix(msg, want) {
					return fmt.Errorf("pod %s: FailedScheduling %q, want %q", name, msg, want)
				}
				continue
			}
			nodes[node] = true
		}
		if len(nodes) != 3 || pending != 1 {
			return fmt.Errorf("pods on %v, %d pending:\n%s", nodes, pending, out)
		}
		return nil
	})
}
