package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// checkConfig runs `mizzen check-config` with free ports (other tests'
// servers hold the default ones at times) and returns its output and
// exit code.
func checkConfig(t *testing.T, ports map[string]int) (string, int) {
	t.Helper()
	args := []string{"check-config"}
	for _, flag := range []string{"https-listen-port", "kubelet-port", "read-only-port", "etcd-client-port", "etcd-peer-port"} {
		p, ok := ports[flag]
		if !ok {
			p = freePort(t)
		}
		args = append(args, "--"+flag, strconv.Itoa(p))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("mizzen check-config: %v\n%s", err, out)
	return "", 0
}

func TestCheckConfigPassesHereAndFailsOnABusyPort(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("MIZZEN_TEST_STRICT") == "1" {
			t.Fatal("check-config needs root")
		}
		t.Skip("check-config needs root")
	}
	requireDocker(t)
	out, code := checkConfig(t, nil)
	if code != 0 || !strings.HasSuffix(out, "\nSTATUS: pass\n") {
		t.Fatalf("check-config exited %d:\n%s", code, out)
	}
	for _, want := range []string{
		"- running as root: ok\n", "- nf_tables: ok (", "- vxlan: ok (", "- br_netfilter: ok (",
		"- cgroup hierarchy: ok (", "- Docker at unix:///var/run/docker.sock: ok (Docker ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check-config output lacks %q:\n%s", want, out)
		}
	}

	// A port something else listens on is a failure, with its fix.
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	out, code = checkConfig(t, map[string]int{"kubelet-port": busy})
	want := fmt.Sprintf("- port %d (--kubelet-port): FAIL (in use: ", busy)
	if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "choose another port with --kubelet-port") ||
		!strings.Contains(out, "\nSTATUS: 1 (fail)\n") {
		t.Fatalf("check-config with port %d taken exited %d, want 1 and %q:\n%s", busy, code, want, out)
	}
}

// TestCheckConfigRefusesADockerHostTheAgentRefuses checks that
// check-config takes --docker-host (and DOCKER_HOST) as the server and
// agent do: an ssh:// address is a usage error, not "install Docker".
func TestCheckConfigRefusesADockerHostTheAgentRefuses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "check-config")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MIZZEN_DOCKER_HOST=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "DOCKER_HOST=ssh://user@docker.example")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), `--docker-host: "ssh://user@docker.example" is not a unix:// or tcp:// address`) {
		t.Fatalf("mizzen check-config with DOCKER_HOST=ssh://...: %v\n%s", err, out)
	}
}

// metricValue returns the value of the series of /metrics text whose
// line starts with series (name{labels} exactly as Prometheus prints
// them), or -1.
func metricValue(text, series string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

func TestMetricsShowRequestsSchedulingAndQueues(t *testing.T) {
	s := startServer(t)
	s.addReadyNode(t, "metrics-node")
	s.createSchedPod(t, "metrics-pod", "")
	if node := s.nodeOf(t, "metrics-pod"); node != "metrics-node" {
		t.Fatalf("pod bound to %q", node)
	}
	s.kubectl("get", "pods")
	if _, err := s.kubectlErr("get", "pod", "no-such-pod"); err == nil {
		t.Fatal("kubectl get of a missing pod succeeded")
	}
	// A watch in flight shows in the watch gauges.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch := exec.CommandContext(ctx, kubectlPath(t), "--kubeconfig", s.kubeconfig, "get", "pods", "--watch")
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer watch.Wait()
	defer cancel()

	pod := `component="apiserver",group="",resource="pods",`
	want := map[string]float64{
		`apiserver_request_total{code="201",` + pod + `scope="resource",subresource="",verb="POST",version="v1"}`:                                             1,
		`apiserver_request_total{code="200",` + pod + `scope="namespace",subresource="",verb="LIST",version="v1"}`:                                            1,
		`apiserver_request_total{code="404",` + pod + `scope="resource",subresource="",verb="GET",version="v1"}`:                                              1,
		`apiserver_request_total{code="200",component="apiserver",group="",resource="nodes",scope="resource",subresource="status",verb="PATCH",version="v1"}`: 1,
		`apiserver_request_duration_seconds_count{` + pod + `scope="resource",subresource="",verb="POST",version="v1"}`:                                       1,
		`apiserver_registered_watchers{group="",kind="Pod",version="v1"}`:                                                                                     1,
		`apiserver_longrunning_requests{` + pod + `scope="namespace",subresource="",verb="WATCH",version="v1"}`:                                               1,
		`etcd_request_duration_seconds_count{operation="create",type="pods"}`:                                                                                 1,
		`scheduler_schedule_attempts_total{profile="default-scheduler",result="scheduled"}`:                                                                   1,
		`scheduler_scheduling_attempt_duration_seconds_count{profile="default-scheduler",result="scheduled"}`:                                                 1,
		`workqueue_adds_total{name="namespace"}`:                                                                                                              1,
		`workqueue_work_duration_seconds_count{name="namespace"}`:                                                                                             1,
		`workqueue_depth{name="deployment"}`:                                                                                                                  0,
	}
	var text string
	eventually(t, 20*time.Second, func() error {
		text = s.kubectl("get", "--raw", "/metrics")
		for series, min := range want {
			if v := metricValue(text, series); v < min {
				return fmt.Errorf("%s is %v, want at least %v", series, v, min)
			}
		}
		return nil
	})
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if !regexp.MustCompile(`(?m)^` + name + ` \d`).MatchString(text) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	// Only system:masters (and system:monitoring) may read it: not the
	// join token's bootstrap identity.
	req, _ := http.NewRequest(http.MethodGet, s.url()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.token())
	resp, err := insecureClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET /metrics with the join token: %s, want 403", resp.Status)
	}
}

// TestGlobalLogFlagsBeforeTheCommand checks that --log-format given before
// the command is read, not hidden by the command's own default.
func TestGlobalLogFlagsBeforeTheCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "--log-format", "yaml", "server", "--data-dir", t.TempDir()).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), `--log-format: "yaml" is not text or json`) {
		t.Fatalf("mizzen --log-format yaml server: %v\n%s", err, out)
	}
}
