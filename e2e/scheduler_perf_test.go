package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestSchedulerThroughputThroughAPI measures the time from creating a
// 500-replica Deployment to all its pods bound on 50 nodes, and the
// spread. It runs only with MIZZEN_E2E_PERF=1 and asserts no timing.
func TestSchedulerThroughputThroughAPI(t *testing.T) {
	if os.Getenv("MIZZEN_E2E_PERF") != "1" {
		t.Skip("set MIZZEN_E2E_PERF=1 to measure")
	}
	const nodes, replicas = 50, 500
	s := startServer(t)
	c := s.adminClient(t)
	do := func(method, path, ctype, body string) {
		req, _ := http.NewRequest(method, s.url()+path, bytes.NewBufferString(body))
		req.Header.Set("Content-Type", ctype)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
	}
	res := `{"cpu":"4","memory":"8Gi","pods":"110"}`
	for i := 0; i < nodes; i++ {
		name := fmt.Sprintf("perf-%02d", i)
		do("POST", "/api/v1/nodes", "application/json", nodeJSON(name))
		do("PATCH", "/api/v1/nodes/"+name+"/status", "application/merge-patch+json",
			`{"status":{"capacity":`+res+`,"allocatable":`+res+`,"conditions":[{"type":"Ready","status":"True"}]}}`)
	}
	start := time.Now()
	s.kubectl("create", "deployment", "perf", "--image=busybox", fmt.Sprintf("--replicas=%d", replicas))
	var perNode map[string]int
	eventually(t, 120*time.Second, func() error {
		out := s.kubectl("get", "pods", "-l", "app=perf", "-o", `jsonpath={range .items[*]}{.spec.nodeName}{"\n"}{end}`)
		perNode = map[string]int{}
		bound := 0
		for _, l := range strings.Split(out, "\n") {
			if l != "" {
				perNode[l]++
				bound++
			}
		}
		if bound < replicas {
			return fmt.Errorf("%d of %d pods bound", bound, replicas)
		}
		return nil
	})
	elapsed := time.Since(start)
	counts := make([]int, 0, len(perNode))
	for _, n := range perNode {
		counts = append(counts, n)
	}
	sort.Ints(counts)
	t.Logf("%d pods bound on %d nodes in %v (%.0f pods/s); per node min %d max %d",
		replicas, len(perNode), elapsed.Round(time.Millisecond), float64(replicas)/elapsed.Seconds(), counts[0], counts[len(counts)-1])
}
