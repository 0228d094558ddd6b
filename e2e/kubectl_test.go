package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
)

const manifest = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  color: blue
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: shop
data:
  password: aHVudGVyMg==
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: busybox:1.36
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
`

func mustContain(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestKubectlApplyCreatesThenUnchangedThenConfigured(t *testing.T) {
	s := startServer(t)
	out, err := s.kubectlIn(manifest, "apply", "-f", "-")
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	mustContain(t, out, "namespace/shop created", "configmap/settings created", "secret/creds created",
		"deployment.apps/web created", "service/web created")

	out, err = s.kubectlIn(manifest, "apply", "-f", "-")
	if err != nil {
		t.Fatalf("second apply: %v\n%s", err, out)
	}
	mustContain(t, out, "namespace/shop unchanged", "configmap/settings unchanged", "secret/creds unchanged",
		"deployment.apps/web unchanged", "service/web unchanged")

	changed := strings.Replace(manifest, "color: blue", "color: green", 1)
	changed = strings.Replace(changed, "replicas: 2", "replicas: 3", 1)
	out, err = s.kubectlIn(changed, "apply", "-f", "-")
	if err != nil {
		t.Fatalf("third apply: %v\n%s", err, out)
	}
	mustContain(t, out, "configmap/settings configured", "deployment.apps/web configured", "service/web unchanged")
	if got := s.kubectl("get", "cm", "settings", "-n", "shop", "-o", "jsonpath={.data.color}"); got != "green" {
		t.Fatalf("color = %q", got)
	}

	// The service got a ClusterIP from the service CIDR.
	ip := s.kubectl("get", "svc", "web", "-n", "shop", "-o", "jsonpath={.spec.clusterIP}")
	if !strings.HasPrefix(ip, "10.43.") {
		t.Fatalf("clusterIP %q not in 10.43.0.0/16", ip)
	}
	out = s.kubectl("get", "svc", "-n", "shop")
	mustContain(t, out, "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "ClusterIP", ip, "80/TCP")
	out = s.kubectl("get", "deploy", "-n", "shop")
	mustContain(t, out, "READY", "UP-TO-DATE", "AVAILABLE", "0/3")
}

func TestKubectlScaleAndPatches(t *testing.T) {
	s := startServer(t)
	if out, err := s.kubectlIn(manifest, "apply", "-f", "-"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	mustContain(t, s.kubectl("scale", "-n", "shop", "deployment/web", "--replicas=5"), "deployment.apps/web scaled")
	if got := s.kubectl("get", "deploy", "web", "-n", "shop", "-o", "jsonpath={.spec.replicas}"); got != "5" {
		t.Fatalf("replicas = %q", got)
	}
	gen := s.kubectl("get", "deploy", "web", "-n", "shop", "-o", "jsonpath={.metadata.generation}")
	if gen != "2" {
		t.Fatalf("generation after scale = %q, want 2", gen)
	}

	// Strategic merge: containers merge by name.
	s.kubectl("patch", "-n", "shop", "deployment", "web", "-p",
		`{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"busybox:1.37"}]}}}}`)
	out := s.kubectl("get", "deploy", "web", "-n", "shop", "-o", "jsonpath={.spec.template.spec.containers[*].image} {.spec.template.spec.containers[0].ports[0].containerPort}")
	if out != "busybox:1.37 8080" {
		t.Fatalf("after strategic patch: %q", out)
	}
	// Merge patch.
	s.kubectl("patch", "-n", "shop", "cm", "settings", "--type=merge", "-p", `{"data":{"size":"xl"}}`)
	// JSON patch.
	s.kubectl("patch", "-n", "shop", "cm", "settings", "--type=json", "-p", `[{"op":"replace","path":"/data/color","value":"red"},{"op":"remove","path":"/data/size"}]`)
	got := s.kubectl("get", "cm", "settings", "-n", "shop", "-o", "jsonpath={.data}")
	if got != `{"color":"red"}` {
		t.Fatalf("data after patches = %s", got)
	}
	// A JSON patch that tests a wrong value fails without a change.
	out, err := s.kubectlErr("patch", "-n", "shop", "cm", "settings", "--type=json", "-p", `[{"op":"test","path":"/data/color","value":"blue"}]`)
	if err == nil {
		t.Fatalf("failing test op accepted:\n%s", out)
	}
}

func TestKubectlSelectorsAndChunkedLists(t *testing.T) {
	s := startServer(t)
	for i := 0; i < 7; i++ {
		tier := "back"
		if i%2 == 0 {
			tier = "front"
		}
		s.kubectl("create", "configmap", fmt.Sprintf("cm-%d", i))
		s.kubectl("label", "configmap", fmt.Sprintf("cm-%d", i), "tier="+tier)
	}
	out := s.kubectl("get", "cm", "-l", "tier=front", "-o", "name")
	if n := strings.Count(out, "configmap/cm-"); n != 4 {
		t.Fatalf("tier=front matched %d:\n%s", n, out)
	}
	out = s.kubectl("get", "cm", "-l", "tier in (back),tier!=front", "-o", "name")
	if n := strings.Count(out, "configmap/cm-"); n != 3 {
		t.Fatalf("set selector matched %d:\n%s", n, out)
	}
	out = s.kubectl("get", "cm", "--field-selector", "metadata.name=cm-3", "-o", "name")
	if strings.TrimSpace(out) != "configmap/cm-3" {
		t.Fatalf("field selector: %q", out)
	}
	out, err := s.kubectlErr("get", "cm", "--field-selector", "spec.bogus=1")
	if err == nil || !strings.Contains(out, "field label not supported: spec.bogus") {
		t.Fatalf("unsupported field selector: %v\n%s", err, out)
	}
	// --chunk-size makes kubectl follow continue tokens.
	out = s.kubectl("get", "cm", "--chunk-size=2", "-o", "name", "-v=6")
	if n := strings.Count(out, "configmap/cm-"); n != 7 {
		t.Fatalf("chunked list returned %d:\n%s", n, out)
	}
	if !strings.Contains(out, "continue=") {
		t.Fatalf("kubectl never followed a continue token:\n%s", out)
	}
}

func TestKubectlDryRunGenerateNameAndDescribe(t *testing.T) {
	s := startServer(t)
	out := s.kubectl("create", "configmap", "dry", "--from-literal=a=b", "--dry-run=server", "-o", "yaml")
	mustContain(t, out, "name: dry", "a: b")
	if _, err := s.kubectlErr("get", "cm", "dry"); err == nil {
		t.Fatal("server dry-run stored the object")
	}
	gen := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"job-"}}`
	name := s.kubectlInOK(gen, "create", "-f", "-", "-o", "jsonpath={.metadata.name}")
	if !strings.HasPrefix(name, "job-") || len(name) != len("job-")+5 {
		t.Fatalf("generated name %q", name)
	}
	s.kubectl("create", "deployment", "web", "--image=busybox:1.36", "--replicas=2")
	out = s.kubectl("describe", "deployment", "web")
	mustContain(t, out, "Name:", "web", "Replicas:", "2 desired", "Selector:", "app=web")
	out = s.kubectl("describe", "namespace", "default")
	mustContain(t, out, "Status:", "Active")
}

func (s *server) kubectlInOK(stdin string, args ...string) string {
	s.t.Helper()
	out, err := s.kubectlIn(stdin, args...)
	if err != nil {
		s.t.Fatalf("kubectl %v: %v\n%s", args, err, out)
	}
	return out
}

func TestKubectlInvalidObjectsAndMalformedBodies(t *testing.T) {
	s := startServer(t)
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"bad"},"spec":{"containers":[{"name":"c"}]}}`
	out, err := s.kubectlIn(pod, "create", "-f", "-")
	if err == nil {
		t.Fatal("pod without image accepted")
	}
	mustContain(t, out, `Pod "bad" is invalid`, "spec.containers[0].image: Required value")

	out, err = s.kubectlIn(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}`, "create", "-f", "-")
	if err == nil {
		t.Fatal("invalid name accepted")
	}
	mustContain(t, out, `ConfigMap "Bad_Name" is invalid`, "metadata.name: Invalid value")

	out, err = s.kubectlIn(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"bogus":1}`, "create", "-f", "-", "--validate=strict")
	if err == nil {
		t.Fatal("unknown field accepted with strict validation")
	}
	mustContain(t, out, `unknown field "bogus"`)

	// Raw requests: malformed JSON is a 400 Status, a huge body a 413.
	c := s.adminClient(t)
	for _, tc := range []struct {
		body string
		code int
	}{
		{`{"apiVersion":"v1","kind":"ConfigMap",`, http.StatusBadRequest},
		{`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"a":"` + strings.Repeat("x", 4<<20) + `"}}`, http.StatusRequestEntityTooLarge},
	} {
		resp, err := c.Post(s.url()+"/api/v1/namespaces/default/configmaps", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			Kind string `json:"kind"`
			Code int    `json:"code"`
		}
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if resp.StatusCode != tc.code || st.Kind != "Status" || st.Code != tc.code {
			t.Fatalf("body of %d bytes: HTTP %d, Status %+v; want %d", len(tc.body), resp.StatusCode, st, tc.code)
		}
	}
}

func TestUnauthenticatedRequestsGet401(t *testing.T) {
	s := startServer(t)
	c := insecureClient()
	for _, p := range []string{"/api/v1/namespaces", "/apis", "/api/v1/namespaces/default/pods"} {
		resp, err := c.Get(s.url() + p)
		if err != nil {
			t.Fatal(err)
		}
		var st map[string]interface{}
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if resp.StatusCode != 401 || st["reason"] != "Unauthorized" {
			t.Fatalf("%s: %d %v", p, resp.StatusCode, st)
		}
	}
	for _, p := range []string{"/healthz", "/livez", "/readyz", "/version"} {
		resp, err := c.Get(s.url() + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
	}
}

func TestStaleUpdateConflicts(t *testing.T) {
	s := startServer(t)
	s.kubectl("create", "configmap", "c", "--from-literal=a=1")
	stale := s.kubectl("get", "cm", "c", "-o", "json")
	s.kubectl("patch", "cm", "c", "--type=merge", "-p", `{"data":{"a":"2"}}`)
	out, err := s.kubectlIn(strings.Replace(stale, `"a": "1"`, `"a": "3"`, 1), "replace", "-f", "-")
	if err == nil {
		t.Fatalf("stale replace accepted:\n%s", out)
	}
	mustContain(t, out, "Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again")
}

func TestObjectsSurviveRestart(t *testing.T) {
	s := startServer(t)
	s.kubectlInOK(manifest, "apply", "-f", "-")
	ip := s.kubectl("get", "svc", "web", "-n", "shop", "-o", "jsonpath={.spec.clusterIP}")
	s.restart()
	out := s.kubectl("get", "cm,secret,deploy,svc", "-n", "shop", "-o", "name")
	mustContain(t, out, "configmap/settings", "secret/creds", "deployment.apps/web", "service/web")
	// The allocator was rebuilt: a new service with the same IP conflicts.
	svc := fmt.Sprintf(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"dup"},"spec":{"clusterIP":%q,"ports":[{"port":1}]}}`, ip)
	out, err := s.kubectlIn(svc, "create", "-f", "-")
	if err == nil {
		t.Fatalf("duplicate clusterIP accepted after restart:\n%s", out)
	}
	mustContain(t, out, "provided IP is already allocated")
	out = s.kubectlInOK(manifest, "apply", "-f", "-")
	mustContain(t, out, "deployment.apps/web unchanged")
}

func TestKubectlExplainAndTables(t *testing.T) {
	s := startServer(t)
	out := s.kubectl("explain", "pod.spec.containers")
	mustContain(t, out, "KIND:", "Pod", "FIELD: containers", "image")
	s.kubectlInOK(boundPod, "create", "-f", "-")
	out = s.kubectl("get", "pods", "-o", "wide")
	for _, col := range []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"} {
		mustContain(t, out, col)
	}
	mustContain(t, out, "0/1", "Pending")
	out = s.kubectl("get", "ns")
	mustContain(t, out, "NAME", "STATUS", "AGE", "kube-system", "Active")
	s.kubectl("create", "configmap", "two", "--from-literal=a=1", "--from-literal=b=2")
	out = s.kubectl("get", "cm", "-A")
	mustContain(t, out, "NAMESPACE", "DATA", "two", " 2 ")
	out = s.kubectl("get", "endpoints", "kubernetes")
	mustContain(t, out, "ENDPOINTS", "127.0.0.1:")
}

func TestNamespaceMustExistAndNotTerminate(t *testing.T) {
	s := startServer(t)
	out, err := s.kubectlErr("create", "configmap", "x", "-n", "nope")
	if err == nil {
		t.Fatal("create in a missing namespace succeeded")
	}
	mustContain(t, out, `namespaces "nope" not found`)
	s.kubectl("create", "namespace", "going")
	// Content with a finalizer keeps the namespace Terminating.
	s.kubectlInOK(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"hold","namespace":"going","finalizers":["example.com/hold"]}}`, "create", "-f", "-")
	s.kubectl("delete", "namespace", "going", "--wait=false")
	mustContain(t, s.kubectl("get", "ns", "going"), "Terminating")
	out, err = s.kubectlErr("create", "configmap", "x", "-n", "going")
	if err == nil {
		t.Fatal("create in a terminating namespace succeeded")
	}
	mustContain(t, out, "unable to create new content in namespace going because it is being terminated")
}

func TestYAMLRequestBody(t *testing.T) {
	s := startServer(t)
	c := s.adminClient(t)
	body := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n"
	resp, err := c.Post(s.url()+"/api/v1/namespaces/default/configmaps", "application/yaml", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("YAML create: %d", resp.StatusCode)
	}
	if got := s.kubectl("get", "cm", "from-yaml", "-o", "jsonpath={.data.k}"); got != "v" {
		t.Fatalf("data %q", got)
	}
}

func TestJoinTokenCannotTouchResources(t *testing.T) {
	s := startServer(t)
	tok, err := os.ReadFile(s.dataDir + "/server/token")
	if err != nil {
		t.Fatal(err)
	}
	c := insecureClient()
	get := func(path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, s.url()+path, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st struct {
			Message string `json:"message"`
		}
		json.NewDecoder(resp.Body).Decode(&st)
		return resp.StatusCode, st.Message
	}
	code, msg := get("/api/v1/namespaces/kube-system/secrets")
	if code != 403 || msg != `secrets is forbidden: User "node-bootstrap" cannot list resource "secrets" in API group "" in the namespace "kube-system"` {
		t.Fatalf("join token listing secrets: %d %q", code, msg)
	}
	if code, _ := get("/api"); code != 200 {
		t.Fatalf("join token discovery: %d", code)
	}
}

func TestEventsOfBothAPIsAreOneStore(t *testing.T) {
	s := startServer(t)
	uid := s.kubectlInOK(boundPod, "create", "-f", "-", "-o", "jsonpath={.metadata.uid}")
	ev := `{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"p.1"},"eventTime":"2026-01-01T00:00:00.000000Z",
"reportingController":"example.com/ctl","reportingInstance":"ctl-1","action":"Poke","reason":"Poked","type":"Normal",
"note":"poked the pod","regarding":{"kind":"Pod","namespace":"default","name":"p","apiVersion":"v1","uid":"` + uid + `"}}`
	s.kubectlInOK(ev, "create", "-f", "-")
	out := s.kubectl("get", "events.v1.", "-o", "jsonpath={.items[0].message}")
	if out != "poked the pod" {
		t.Fatalf("core/v1 view of an events.k8s.io Event: %q", out)
	}
	mustContain(t, s.kubectl("describe", "pod", "p"), "Poked", "poked the pod")
	out = s.kubectl("get", "events.v1.events.k8s.io", "p.1", "-o", "jsonpath={.note} {.regarding.name}")
	if out != "poked the pod p" {
		t.Fatalf("events.k8s.io view: %q", out)
	}
	// Field selectors on involvedObject work on the shared store.
	out = s.kubectl("get", "events", "--field-selector", "involvedObject.name=p", "-o", "name")
	mustContain(t, out, "event/p.1")
}
