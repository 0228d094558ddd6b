package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestJobCompletesWhenItsPodsSucceed(t *testing.T) {
	s := startServer(t)
	job := `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"pi"},"spec":{"completions":3,"parallelism":2,
"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox"}]}}}}`
	s.kubectlInOK(job, "create", "-f", "-")
	done := map[string]bool{}
	eventually(t, 60*time.Second, func() error {
		out, err := s.kubectlErr("get", "pods", "-l", "job-name=pi", "-o", `jsonpath={range .items[*]}{.metadata.name} {.status.phase}{"\n"}{end}`)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || done[f[0]] {
				continue
			}
			// Act as the kubelet: the pod ran and succeeded.
			if _, err := s.kubectlErr("patch", "pod", f[0], "--subresource=status", "--type=merge", "-p", `{"status":{"phase":"Succeeded"}}`); err != nil {
				return err
			}
			done[f[0]] = true
		}
		st := s.kubectl("get", "job", "pi", "-o", "jsonpath={.status.succeeded} {.status.conditions[?(@.type==\"Complete\")].status}")
		if st != "3 True" {
			return fmt.Errorf("job status %q", st)
		}
		return nil
	})
	out := s.kubectl("get", "job", "pi")
	mustContain(t, out, "Complete", "3/3")
	mustContain(t, s.kubectl("describe", "job", "pi"), "SuccessfulCreate", "Completed")
	if n := len(done); n != 3 {
		t.Fatalf("%d pods created for 3 completions", n)
	}
}
