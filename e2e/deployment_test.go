package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// rsOf returns "name replicas image" lines of a deployment's ReplicaSets.
func (s *server) replicaSetsOf(app string) string {
	return s.kubectl("get", "rs", "-l", "app="+app, "-o",
		`jsonpath={range .items[*]}{.metadata.annotations.deployment\.kubernetes\.io/revision} {.spec.replicas} {.spec.template.spec.containers[0].image}{"\n"}{end}`)
}

func TestDeploymentRollsOutUndoesAndKeepsHistory(t *testing.T) {
	s := startServer(t)
	s.fakeNode("n1")
	s.kubectl("create", "deployment", "web", "--image=busybox:1.36", "--replicas=3")
	want := func(lines ...string) {
		t.Helper()
		eventually(t, 40*time.Second, func() error {
			// Act as the kubelet: pods start and finish terminating, so a
			// rollout can keep its availability and proceed.
			if err := s.markPodsReady("app=web"); err != nil {
				return err
			}
			if err := s.finishTerminating("app=web"); err != nil {
				return err
			}
			got := s.replicaSetsOf("web")
			for _, l := range lines {
				if !strings.Contains(got, l+"\n") {
					return fmt.Errorf("replica sets (revision replicas image):\n%swant line %q", got, l)
				}
			}
			return nil
		})
	}
	want("1 3 busybox:1.36")
	s.kubectl("set", "image", "deployment/web", "busybox=busybox:1.37")
	want("1 0 busybox:1.36", "2 3 busybox:1.37")
	out := s.kubectl("rollout", "history", "deployment/web")
	mustContain(t, out, "REVISION", "1", "2")
	s.kubectl("rollout", "undo", "deployment/web")
	want("3 3 busybox:1.36", "2 0 busybox:1.37")
	if img := s.kubectl("get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"); img != "busybox:1.36" {
		t.Fatalf("after undo the template image is %q", img)
	}
	mustContain(t, s.kubectl("describe", "deployment", "web"), "ScalingReplicaSet", "Scaled up replica set web-")
	// A restart rolls out a new template (restartedAt annotation), and a
	// change-cause annotation shows in the history.
	s.kubectl("annotate", "deployment/web", "kubernetes.io/change-cause=restart for the test")
	s.kubectl("rollout", "restart", "deployment/web")
	want("4 3 busybox:1.36")
	mustContain(t, s.kubectl("rollout", "history", "deployment/web"), "restart for the test")
}
