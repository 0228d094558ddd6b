package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mizzen-dev/mizzen/internal/runtime/runtimetest"
)

const unstartablePods = `apiVersion: v1
kind: Pod
metadata:
  name: nostart
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: bad
    image: ` + runtimetest.BusyboxImage + `
    imagePullPolicy: IfNotPresent
    command: ["/nonexistent"]
---
apiVersion: v1
kind: Pod
metadata:
  name: idle
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: ` + runtimetest.BusyboxImage + `
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
`

// TestKubeletFailsAContainerThatCannotStart: Docker leaves a container
// whose command does not exist "created"; a restartPolicy Never pod with
// one fails instead of retrying for ever. A running pod's status is not
// rewritten while nothing changes.
func TestKubeletFailsAContainerThatCannotStart(t *testing.T) {
	s := startNode(t)
	if out, err := s.kubectlIn(unstartablePods, "apply", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	eventually(t, 60*time.Second, func() error {
		for _, p := range s.pods("default", "") {
			if p.Metadata.Name == "nostart" && p.Status.Phase != "Failed" {
				return fmt.Errorf("nostart: phase %q", p.Status.Phase)
			}
		}
		return nil
	})
	if out := s.kubectl("get", "pod", "nostart", "-o", "jsonpath={.status.containerStatuses[0].state.terminated.reason}"); out != "ContainerCannotRun" {
		t.Fatalf("terminated reason %q", out)
	}
	s.kubectl("wait", "pod/idle", "--for=condition=Ready", "--timeout=60s")
	rv := strings.TrimSpace(s.kubectl("get", "pod", "idle", "-o", "jsonpath={.metadata.resourceVersion}"))
	time.Sleep(12 * time.Second) // past a resync period: nothing to write
	if now := strings.TrimSpace(s.kubectl("get", "pod", "idle", "-o", "jsonpath={.metadata.resourceVersion}")); now != rv {
		t.Fatalf("an idle pod's resourceVersion moved from %s to %s", rv, now)
	}
}
