package openapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/mizzen-dev/mizzen/internal/apiserver/discovery"
	"github.com/mizzen-dev/mizzen/internal/apiserver/kinds"
	"github.com/mizzen-dev/mizzen/internal/apiserver/openapi"
)

// kubectlEnv serves discovery and OpenAPI for the served kinds over plain
// HTTP and runs the real kubectl against it. Every other path answers 404,
// so only commands that stop at discovery, OpenAPI and a failed GET work.
type kubectlEnv struct {
	t          *testing.T
	kubectl    string
	dir        string
	kubeconfig string

	mu       sync.Mutex
	requests []string // guarded by mu
}

func newKubectlEnv(t *testing.T) *kubectlEnv {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		if os.Getenv("MIZZEN_TEST_STRICT") == "1" {
			t.Fatalf("kubectl not found: %v", err)
		}
		t.Skipf("kubectl not found: %v", err)
	}
	reg := kinds.Registry()
	o, err := openapi.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	e := &kubectlEnv{t: t, kubectl: kubectl, dir: t.TempDir()}
	r := chi.NewRouter()
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			e.mu.Lock()
			e.requests = append(e.requests, req.Method+" "+req.URL.String()+" Accept: "+req.Header.Get("Accept"))
			e.mu.Unlock()
			next.ServeHTTP(w, req)
		})
	})
	discovery.New(reg).Mount(r)
	o.Mount(r)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}`)
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	e.kubeconfig = filepath.Join(e.dir, "kubeconfig")
	config := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: mizzen
  cluster:
    server: %s
users:
- name: mizzen
  user: {}
contexts:
- name: mizzen
  context: {cluster: mizzen, user: mizzen, namespace: default}
current-context: mizzen
`, srv.URL)
	if err := os.WriteFile(e.kubeconfig, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// run runs kubectl with args and returns its combined output; on failure of
// the test it logs the requests the server saw.
func (e *kubectlEnv) run(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args = append([]string{"--kubeconfig", e.kubeconfig, "--cache-dir", filepath.Join(e.dir, "cache")}, args...)
	cmd := exec.CommandContext(ctx, e.kubectl, args...)
	cmd.Env = append(os.Environ(), "HOME="+e.dir, "KUBECONFIG="+e.kubeconfig)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	e.t.Logf("kubectl %s:\n%s", strings.Join(args[4:], " "), out)
	return string(out), err
}

func (e *kubectlEnv) dumpRequests() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.t.Logf("requests:\n%s", strings.Join(e.requests, "\n"))
}

func TestKubectlReadsDiscoveryAndOpenAPI(t *testing.T) {
	e := newKubectlEnv(t)
	defer func() {
		if t.Failed() {
			e.dumpRequests()
		}
	}()

	t.Run("api-resources", func(t *testing.T) {
		out, err := e.run("", "api-resources")
		if err != nil {
			t.Fatalf("kubectl api-resources: %v\n%s", err, out)
		}
		for _, want := range []string{
			`pods\s+po\s+v1\s+true\s+Pod`,
			`deployments\s+deploy\s+apps/v1\s+true\s+Deployment`,
			`nodes\s+no\s+v1\s+false\s+Node`,
			`leases\s+coordination.k8s.io/v1\s+true\s+Lease`,
		} {
			if !matches(want, out) {
				t.Errorf("no line matching %q in\n%s", want, out)
			}
		}
	})

	t.Run("explain", func(t *testing.T) {
		out, err := e.run("", "explain", "pod.spec.containers")
		if err != nil {
			t.Fatalf("kubectl explain: %v\n%s", err, out)
		}
		for _, want := range []string{"KIND:       Pod", "FIELD: containers <[]Container>", "List of containers belonging to the pod", "image\t<string>"} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in\n%s", want, out)
			}
		}
		out, err = e.run("", "explain", "deployments.spec.strategy", "--recursive")
		if err != nil || !strings.Contains(out, "GROUP:      apps") || !strings.Contains(out, "maxSurge\t<IntOrString>") {
			t.Errorf("kubectl explain deployments.spec.strategy: %v\n%s", err, out)
		}
	})

	// With --dry-run=client kubectl stops before writing; what it validates
	// on the client shows what it learnt from /openapi/v3 and /openapi/v2.
	t.Run("apply leaves field validation to the server", func(t *testing.T) {
		pod := "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  bogus: 1\n  containers: [{name: c, image: busybox}]\n"
		out, err := e.run(pod, "apply", "--dry-run=client", "-f", "-")
		if err != nil || !strings.Contains(out, "pod/p created (dry run)") {
			t.Fatalf("kubectl apply: %v\n%s", err, out)
		}
	})

	t.Run("apply validates a List with OpenAPI v2", func(t *testing.T) {
		list := "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: p}\n  spec:\n    bogus: 1\n    containers: [{name: c, image: busybox}]\n"
		out, err := e.run(list, "apply", "--dry-run=client", "-f", "-")
		if err == nil || !strings.Contains(out, `unknown field "bogus"`) {
			t.Fatalf("kubectl apply of an invalid List: %v\n%s", err, out)
		}
		valid := strings.Replace(list, "    bogus: 1\n", "", 1)
		out, err = e.run(valid, "apply", "--dry-run=client", "-f", "-")
		if err != nil || !strings.Contains(out, "pod/p created (dry run)") {
			t.Fatalf("kubectl apply of a valid List: %v\n%s", err, out)
		}
	})
}

func matches(pattern, s string) bool {
	for _, line := range strings.Split(s, "\n") {
		if regexp.MustCompile(pattern).MatchString(line) {
			return true
		}
	}
	return false
}
