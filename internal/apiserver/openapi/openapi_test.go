package openapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/openapi3"
	"k8s.io/client-go/rest"
	"k8s.io/kube-openapi/pkg/spec3"
	openapiproto "k8s.io/kube-openapi/pkg/util/proto"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/mizzen-dev/mizzen/internal/apiserver/kinds"
	"github.com/mizzen-dev/mizzen/internal/apiserver/openapi"
	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	o, err := openapi.New(kinds.Registry())
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	o.Mount(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func v3Root(srv *httptest.Server) openapi3.Root {
	return openapi3.NewRoot(discovery.NewDiscoveryClientForConfigOrDie(&rest.Config{Host: srv.URL}).OpenAPIV3())
}

func TestNewRejectsARegistryTheDocumentsDoNotDescribe(t *testing.T) {
	role := &registry.Kind{
		GVR: rbacv1.SchemeGroupVersion.WithResource("roles"), Kind: "Role", ListKind: "RoleList", Namespaced: true,
		New: func() runtime.Object { return &rbacv1.Role{} }, NewList: func() runtime.Object { return &rbacv1.RoleList{} },
	}
	_, err := openapi.New(registry.New(append(kinds.Registry().Kinds(), role)...))
	if err == nil || !strings.Contains(err.Error(), "go generate") {
		t.Fatalf("New = %v, want an error telling to run go generate", err)
	}
}

func TestV3IndexListsEveryServedGroupVersion(t *testing.T) {
	srv := newServer(t)
	resp, body := get(t, srv, "/openapi/v3")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("ETag") == "" {
		t.Fatalf("GET /openapi/v3: %d %v", resp.StatusCode, resp.Header)
	}
	var index struct {
		Paths map[string]struct {
			ServerRelativeURL string `json:"serverRelativeURL"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(body, &index); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for p, v := range index.Paths {
		paths = append(paths, p)
		if !regexp.MustCompile(`^/openapi/v3/` + regexp.QuoteMeta(p) + `\?hash=[0-9A-F]{128}$`).MatchString(v.ServerRelativeURL) {
			t.Errorf("%s: serverRelativeURL %q", p, v.ServerRelativeURL)
		}
		resp, _ := get(t, srv, v.ServerRelativeURL)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "public, immutable" ||
			`"`+strings.SplitN(v.ServerRelativeURL, "hash=", 2)[1]+`"` != resp.Header.Get("ETag") {
			t.Errorf("GET %s: %d %v", v.ServerRelativeURL, resp.StatusCode, resp.Header)
		}
	}
	slices.Sort(paths)
	want := []string{"api/v1", "apis/apps/v1", "apis/batch/v1", "apis/coordination.k8s.io/v1", "apis/discovery.k8s.io/v1", "apis/events.k8s.io/v1"}
	if !slices.Equal(paths, want) {
		t.Fatalf("index paths = %v, want %v", paths, want)
	}
}

func TestV3DocumentDescribesPods(t *testing.T) {
	srv := newServer(t)
	doc, err := v3Root(srv).GVSpec(schema.GroupVersion{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	pod, ok := doc.Components.Schemas["io.k8s.api.core.v1.Pod"]
	if !ok {
		t.Fatal("no io.k8s.api.core.v1.Pod schema")
	}
	var gvks []map[string]string
	err = pod.Extensions.GetObject("x-kubernetes-group-version-kind", &gvks)
	if err != nil || len(gvks) != 1 || gvks[0]["kind"] != "Pod" || gvks[0]["version"] != "v1" || gvks[0]["group"] != "" {
		t.Fatalf("Pod GVK = %v, %v", gvks, err)
	}
	if _, ok := pod.Properties["spec"]; !ok || pod.Properties["spec"].AllOf[0].Ref.String() != "#/components/schemas/io.k8s.api.core.v1.PodSpec" {
		t.Fatalf("Pod.spec = %+v", pod.Properties["spec"])
	}
	// Every reference resolves within the document.
	raw, _ := json.Marshal(doc)
	for _, m := range regexp.MustCompile(`"\$ref":"#/components/schemas/([^"]+)"`).FindAllStringSubmatch(string(raw), -1) {
		if _, ok := doc.Components.Schemas[m[1]]; !ok {
			t.Errorf("dangling reference to %s", m[1])
		}
	}
	item := doc.Paths.Paths["/api/v1/namespaces/{namespace}/pods/{name}"]
	if item == nil || item.Get == nil || item.Put == nil || item.Patch == nil || item.Delete == nil {
		t.Fatalf("pods/{name} = %+v", item)
	}
	if item.Get.OperationId != "readCoreV1NamespacedPod" || item.Get.Extensions["x-kubernetes-action"] != "get" {
		t.Errorf("GET pod = %s %v", item.Get.OperationId, item.Get.Extensions)
	}
	for _, p := range []string{"/api/v1/pods", "/api/v1/namespaces/{namespace}/pods", "/api/v1/namespaces/{namespace}/pods/{name}/status",
		"/api/v1/namespaces/{namespace}/pods/{name}/binding", "/api/v1/namespaces/{namespace}/pods/{name}/log", "/api/v1/nodes/{name}"} {
		if doc.Paths.Paths[p] == nil {
			t.Errorf("no path %s", p)
		}
	}
}

// supportsFieldValidation is what kubectl 1.32 (cli-runtime's
// queryParamVerifierV3) checks: the first PATCH operation tagged with the
// kind's GVK lists fieldValidation among its own parameters.
func supportsFieldValidation(doc *spec3.OpenAPI, gvk schema.GroupVersionKind) bool {
	for _, path := range doc.Paths.Paths {
		op := path.Patch
		if op == nil {
			continue
		}
		var m map[string]string
		if err := op.Extensions.GetObject("x-kubernetes-group-version-kind", &m); err != nil ||
			m["group"] != gvk.Group || m["version"] != gvk.Version || m["kind"] != gvk.Kind {
			continue
		}
		for _, p := range op.Parameters {
			if p.Name == "fieldValidation" {
				return true
			}
		}
		return false
	}
	return false
}

func TestEveryKindSupportsFieldValidationAndStrategicMerge(t *testing.T) {
	srv := newServer(t)
	root := v3Root(srv)
	for _, k := range kinds.Registry().Kinds() {
		gvk := k.GroupVersionKind()
		doc, err := root.GVSpec(gvk.GroupVersion())
		if err != nil {
			t.Fatalf("%s: %v", gvk, err)
		}
		// Run it several times: the verifier stops at the first matching
		// PATCH, and map order differs between runs.
		for range 5 {
			if !supportsFieldValidation(doc, gvk) {
				t.Fatalf("%s: fieldValidation not supported", gvk)
			}
		}
		found := false
		for _, item := range doc.Paths.Paths {
			if item.Patch != nil && item.Patch.RequestBody != nil {
				_, found = item.Patch.RequestBody.Content["application/strategic-merge-patch+json"]
				if found {
					break
				}
			}
		}
		if !found {
			t.Errorf("%s: no PATCH accepts strategic merge patches", gvk)
		}
	}
}

// TestStrategicMergePatchFromV3 computes a patch the way kubectl apply does
// with the v3 document: containers merge by name.
func TestStrategicMergePatchFromV3(t *testing.T) {
	srv := newServer(t)
	doc, err := v3Root(srv).GVSpec(schema.GroupVersion{Group: "apps", Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	var deployment *spec.Schema
	for name, s := range doc.Components.Schemas {
		if name == "io.k8s.api.apps.v1.Deployment" {
			deployment = s
		}
	}
	if deployment == nil {
		t.Fatal("no Deployment schema")
	}
	meta := strategicpatch.PatchMetaFromOpenAPIV3{Schema: deployment, SchemaList: doc.Components.Schemas}
	original := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"a","image":"a:1"},{"name":"b","image":"b:1"}]}}}}`)
	modified := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"a","image":"a:2"},{"name":"b","image":"b:1"}]}}}}`)
	patch, err := strategicpatch.CreateThreeWayMergePatch(original, modified, original, meta, true)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"a"},{"name":"b"}],"containers":[{"image":"a:2","name":"a"}]}}}}`
	if string(patch) != want {
		t.Fatalf("patch = %s\nwant    %s", patch, want)
	}
}

func TestV3HandlerNegotiatesAndCaches(t *testing.T) {
	srv := newServer(t)
	resp, body := get(t, srv, "/openapi/v3/apis/apps/v1")
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != http.StatusOK || !json.Valid(body) {
		t.Fatalf("GET: %d", resp.StatusCode)
	}

	resp, _ = get(t, srv, "/openapi/v3/apis/apps/v1", "If-None-Match", etag)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(srv.URL + "/openapi/v3/apis/apps/v1?hash=stale")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusMovedPermanently || !strings.HasSuffix(loc, "hash="+strings.Trim(etag, `"`)) {
		t.Errorf("stale hash: %d %q", resp.StatusCode, loc)
	}

	for _, accept := range []string{"application/com.github.proto-openapi.spec.v3@v1.0+protobuf", "application/yaml"} {
		resp, body = get(t, srv, "/openapi/v3/apis/apps/v1", "Accept", accept)
		if resp.StatusCode != http.StatusNotAcceptable || !strings.Contains(string(body), `"reason":"NotAcceptable"`) {
			t.Errorf("Accept %s: %d %s", accept, resp.StatusCode, body)
		}
	}
	resp, _ = get(t, srv, "/openapi/v3/apis/rbac.authorization.k8s.io/v1")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown group version: %d", resp.StatusCode)
	}

	// Without Accept-Encoding: gzip the document is sent uncompressed.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/openapi/v3/api/v1", nil)
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err = (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "" || !json.Valid(body) {
		t.Errorf("identity: %v, %d bytes", resp.Header, len(body))
	}
}

// TestV2ProtobufReadsAsKubectlReadsIt fetches /openapi/v2 with client-go,
// which asks for protobuf, and parses it into the models kubectl's
// client-side validation uses.
func TestV2ProtobufReadsAsKubectlReadsIt(t *testing.T) {
	srv := newServer(t)
	doc, err := discovery.NewDiscoveryClientForConfigOrDie(&rest.Config{Host: srv.URL}).OpenAPISchema()
	if err != nil {
		t.Fatal(err)
	}
	models, err := openapiproto.NewOpenAPIData(doc)
	if err != nil {
		t.Fatal(err)
	}
	pod := models.LookupModel("io.k8s.api.core.v1.Pod")
	if pod == nil {
		t.Fatal("no io.k8s.api.core.v1.Pod model")
	}
	gvks, _ := pod.GetExtensions()["x-kubernetes-group-version-kind"].([]any)
	if len(gvks) != 1 {
		t.Fatalf("Pod GVK = %v", pod.GetExtensions())
	}
	kind, ok := pod.(*openapiproto.Kind)
	if !ok || kind.Fields["spec"] == nil {
		t.Fatalf("Pod model = %T %+v", pod, pod)
	}
	if doc.Paths == nil || len(doc.Paths.Path) == 0 {
		t.Fatal("no paths")
	}

	resp, body := get(t, srv, "/openapi/v2", "Accept", "application/json")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || !json.Valid(body) {
		t.Fatalf("JSON: %d %v", resp.StatusCode, resp.Header)
	}
}

func BenchmarkServeV3Document(b *testing.B) {
	o, err := openapi.New(kinds.Registry())
	if err != nil {
		b.Fatal(err)
	}
	r := chi.NewRouter()
	o.Mount(r)
	for b.Loop() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/openapi/v3/api/v1", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		r.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}
