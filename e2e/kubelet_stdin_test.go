package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mizzen-dev/mizzen/internal/runtime/runtimetest"
)

// kubectl attach -i and exec -i against real kubectl: the end of stdin
// keeps an attachment's output flowing, and kubectls killed while their
// typing waits for a process that does not read it release their streams.
func TestKubeletStdinStreams(t *testing.T) {
	s := startNode(t)
	pods := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: echo}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: %[1]s
    imagePullPolicy: IfNotPresent
    stdin: true
    command: ["sh", "-c", "while read l; do echo got $l; done; echo stdin closed; sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: silent}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: %[1]s
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
`, runtimetest.BusyboxImage)
	if out, err := s.kubectlIn(pods, "apply", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	s.kubectl("wait", "pod/echo", "pod/silent", "--for=condition=Ready", "--timeout=60s")

	// printf a | kubectl attach -i: the answer arrives after stdin ended.
	cmd := exec.Command(kubectlPath(t), "--kubeconfig", s.kubeconfig, "attach", "-i", "echo")
	cmd.Stdin = strings.NewReader("a\n")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		var acc strings.Builder
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			acc.WriteString(sc.Text() + "\n")
			if sc.Text() == "got a" {
				break
			}
		}
		got <- acc.String()
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case o := <-got:
		if !strings.Contains(o, "got a\n") {
			t.Errorf("kubectl attach -i ended with %q, want the answer got a", o)
		}
	case <-time.After(30 * time.Second):
		t.Error("no answer to stdin in 30 s")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	// Streams of killed kubectls whose stdin nobody reads end: the
	// process's goroutines return to about where they were.
	goroutines := func() int {
		resp, err := http.Get("http://127.0.0.1:" + s.readOnlyPort() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
				n, _ := strconv.Atoi(v)
				return n
			}
		}
		t.Fatal("no go_goroutines in /metrics")
		return 0
	}
	before := goroutines()
	var wg sync.WaitGroup
	const sessions = 6
	for i := range sessions {
		args := []string{"--kubeconfig", s.kubeconfig, "exec", "-i", "silent", "--", "sleep", "3600"}
		if i%2 == 1 {
			args = []string{"--kubeconfig", s.kubeconfig, "attach", "-i", "silent"}
		}
		c := exec.Command(kubectlPath(t), args...)
		in, err := c.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			line := []byte(strings.Repeat("typed and never read ", 50) + "\n")
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline) {
				if _, err := in.Write(line); err != nil {
					break
				}
			}
			_ = c.Process.Kill()
			_ = c.Wait()
		}()
	}
	wg.Wait()
	killed := time.Now()
	eventually(t, 60*time.Second, func() error {
		if n := goroutines(); n > before+sessions {
			return fmt.Errorf("%d goroutines, %d before %d killed sessions", n, before, sessions)
		}
		return nil
	})
	t.Logf("streams released %v after their kubectls were killed", time.Since(killed).Round(time.Second))
}
