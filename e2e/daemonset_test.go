package e2e

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestDaemonSetRunsOnePodPerNodeAndFollowsNewNodes(t *testing.T) {
	s := startServer(t)
	s.fakeNode("n1")
	s.fakeNode("n2")
	ds := `{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"agent"},"spec":{"selector":{"matchLabels":{"app":"agent"}},
"template":{"metadata":{"labels":{"app":"agent"}},"spec":{"containers":[{"name":"c","image":"busybox"}]}}}}`
	s.kubectlInOK(ds, "create", "-f", "-")
	nodesOfPods := func(want ...string) func() error {
		return func() error {
			out := s.kubectl("get", "pods", "-l", "app=agent", "-o", `jsonpath={range .items[*]}{.spec.nodeName}{"\n"}{end}`)
			got := strings.Fields(out)
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				return fmt.Errorf("daemon pods on %v, want %v", got, want)
			}
			return nil
		}
	}
	eventually(t, 30*time.Second, nodesOfPods("n1", "n2"))
	s.fakeNode("n3")
	eventually(t, 30*time.Second, nodesOfPods("n1", "n2", "n3"))
	eventually(t, 10*time.Second, func() error {
		if got := s.kubectl("get", "ds", "agent", "-o", "jsonpath={.status.desiredNumberScheduled} {.status.currentNumberScheduled}"); got != "3 3" {
			return fmt.Errorf("status %q", got)
		}
		return nil
	})
}
