package discovery

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	apidiscoveryv2beta1 "k8s.io/api/apidiscovery/v2beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// kubectlAccept is the Accept header kubectl 1.32 sends to /api and /apis.
const kubectlAccept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"

func testRegistry() *registry.Registry {
	return registry.New(
		&registry.Kind{GVR: corev1.SchemeGroupVersion.WithResource("pods"), Kind: "Pod", ListKind: "PodList", Singular: "pod",
			ShortNames: []string{"po"}, Categories: []string{"all"}, Namespaced: true,
			New: func() runtime.Object { return &corev1.Pod{} }, NewList: func() runtime.Object { return &corev1.PodList{} },
			Status: true, Subresources: []string{"binding", "log"}},
		&registry.Kind{GVR: corev1.SchemeGroupVersion.WithResource("nodes"), Kind: "Node", ListKind: "NodeList", Singular: "node",
			ShortNames: []string{"no"},
			New:        func() runtime.Object { return &corev1.Node{} }, NewList: func() runtime.Object { return &corev1.NodeList{} },
			Status: true},
		&registry.Kind{GVR: appsv1.SchemeGroupVersion.WithResource("deployments"), Kind: "Deployment", ListKind: "DeploymentList", Singular: "deployment",
			ShortNames: []string{"deploy"}, Categories: []string{"all"}, Namespaced: true,
			New: func() runtime.Object { return &appsv1.Deployment{} }, NewList: func() runtime.Object { return &appsv1.DeploymentList{} },
			Status: true, Scale: true},
		&registry.Kind{GVR: eventsv1.SchemeGroupVersion.WithResource("events"), Kind: "Event", ListKind: "EventList", Singular: "event",
			ShortNames: []string{"ev"}, Namespaced: true,
			New: func() runtime.Object { return &eventsv1.Event{} }, NewList: func() runtime.Object { return &eventsv1.EventList{} }},
	)
}

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	r := chi.NewRouter()
	New(testRegistry()).Mount(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, path, accept string, into any) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("GET %s: decode: %v", path, err)
		}
	}
	return resp
}

func TestLegacyAPIVersionsNameTheRequestHost(t *testing.T) {
	srv := newServer(t)
	var v metav1.APIVersions
	resp := get(t, srv, "/api", "application/json", &v)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	want := []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: host}}
	if v.Kind != "APIVersions" || !slices.Equal(v.Versions, []string{"v1"}) || !slices.Equal(v.ServerAddressByClientCIDRs, want) {
		t.Fatalf("GET /api = %+v", v)
	}
}

func TestLegacyGroupListHasPreferredVersions(t *testing.T) {
	srv := newServer(t)
	var list metav1.APIGroupList
	get(t, srv, "/apis", "", &list)
	if list.Kind != "APIGroupList" || len(list.Groups) != 2 {
		t.Fatalf("GET /apis = %+v", list)
	}
	apps := list.Groups[0]
	wantVersion := metav1.GroupVersionForDiscovery{GroupVersion: "apps/v1", Version: "v1"}
	if apps.Name != "apps" || apps.PreferredVersion != wantVersion || len(apps.ServerAddressByClientCIDRs) != 1 {
		t.Fatalf("apps group = %+v", apps)
	}
	if list.Groups[1].Name != "events.k8s.io" {
		t.Fatalf("second group = %q", list.Groups[1].Name)
	}

	var group metav1.APIGroup
	get(t, srv, "/apis/apps", "", &group)
	if group.Kind != "APIGroup" || group.Name != "apps" || group.PreferredVersion != wantVersion {
		t.Fatalf("GET /apis/apps = %+v", group)
	}
}

func TestLegacyResourceListsDescribeSubresources(t *testing.T) {
	srv := newServer(t)
	var core metav1.APIResourceList
	get(t, srv, "/api/v1", "", &core)
	byName := map[string]metav1.APIResource{}
	var names []string
	for _, r := range core.APIResources {
		byName[r.Name] = r
		names = append(names, r.Name)
	}
	wantNames := []string{"nodes", "nodes/status", "pods", "pods/binding", "pods/log", "pods/status"}
	if core.GroupVersion != "v1" || !slices.Equal(names, wantNames) {
		t.Fatalf("GET /api/v1: groupVersion %q, resources %v", core.GroupVersion, names)
	}
	pods := byName["pods"]
	if pods.SingularName != "pod" || !pods.Namespaced || pods.Kind != "Pod" || !slices.Equal(pods.ShortNames, []string{"po"}) ||
		!slices.Equal(pods.Categories, []string{"all"}) || !slices.Equal(pods.Verbs, []string(registry.Verbs)) || pods.StorageVersionHash == "" {
		t.Fatalf("pods = %+v", pods)
	}
	cases := []struct {
		name, kind string
		verbs      []string
	}{
		{"pods/status", "Pod", []string{"get", "patch", "update"}},
		{"pods/binding", "Binding", []string{"create"}},
		{"pods/log", "Pod", []string{"get"}},
	}
	for _, c := range cases {
		r := byName[c.name]
		if r.Kind != c.kind || !slices.Equal(r.Verbs, c.verbs) || !r.Namespaced || r.SingularName != "" {
			t.Errorf("%s = %+v", c.name, r)
		}
	}
	if byName["nodes"].Namespaced {
		t.Errorf("nodes are namespaced")
	}

	var slash metav1.APIResourceList
	get(t, srv, "/api/v1/", "", &slash)
	if slash.GroupVersion != "v1" || len(slash.APIResources) != len(core.APIResources) {
		t.Fatalf("GET /api/v1/ = %+v", slash)
	}

	var apps metav1.APIResourceList
	get(t, srv, "/apis/apps/v1/", "", &apps)
	var scale metav1.APIResource
	for _, r := range apps.APIResources {
		if r.Name == "deployments/scale" {
			scale = r
		}
	}
	if apps.GroupVersion != "apps/v1" || scale.Group != "autoscaling" || scale.Version != "v1" || scale.Kind != "Scale" ||
		!slices.Equal(scale.Verbs, []string{"get", "patch", "update"}) {
		t.Fatalf("GET /apis/apps/v1: %+v, scale %+v", apps.GroupVersion, scale)
	}
}

func TestAggregatedDiscoveryForKubectlAccept(t *testing.T) {
	srv := newServer(t)
	var core apidiscoveryv2.APIGroupDiscoveryList
	resp := get(t, srv, "/api", kubectlAccept, &core)
	if ct := resp.Header.Get("Content-Type"); ct != contentTypeV2 {
		t.Fatalf("Content-Type = %q", ct)
	}
	if resp.Header.Get("Vary") != "Accept" || resp.Header.Get("ETag") == "" {
		t.Fatalf("headers = %v", resp.Header)
	}
	if core.APIVersion != "apidiscovery.k8s.io/v2" || core.Kind != "APIGroupDiscoveryList" || len(core.Items) != 1 {
		t.Fatalf("GET /api = %+v", core)
	}
	v1 := core.Items[0].Versions[0]
	if core.Items[0].Name != "" || v1.Version != "v1" || v1.Freshness != apidiscoveryv2.DiscoveryFreshnessCurrent {
		t.Fatalf("core group = %+v", core.Items[0])
	}
	var pods apidiscoveryv2.APIResourceDiscovery
	for _, r := range v1.Resources {
		if r.Resource == "pods" {
			pods = r
		}
	}
	var subs []string
	for _, s := range pods.Subresources {
		subs = append(subs, s.Subresource+":"+s.ResponseKind.Kind+":"+strings.Join(s.Verbs, ","))
	}
	wantSubs := []string{"binding:Binding:create", "log:Pod:get", "status:Pod:get,patch,update"}
	if pods.Scope != apidiscoveryv2.ScopeNamespace || pods.ResponseKind.Kind != "Pod" || pods.SingularResource != "pod" ||
		!slices.Equal(pods.ShortNames, []string{"po"}) || !slices.Equal(subs, wantSubs) {
		t.Fatalf("pods = %+v, subresources %v", pods, subs)
	}

	var named apidiscoveryv2.APIGroupDiscoveryList
	get(t, srv, "/apis", kubectlAccept, &named)
	if len(named.Items) != 2 || named.Items[0].Name != "apps" || named.Items[1].Name != "events.k8s.io" {
		t.Fatalf("GET /apis = %+v", named)
	}
	scale := named.Items[0].Versions[0].Resources[0].Subresources[0]
	if want := (metav1.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}); scale.Subresource != "scale" || *scale.ResponseKind != want {
		t.Fatalf("deployments subresources = %+v", named.Items[0].Versions[0].Resources[0].Subresources)
	}
}

func TestAggregatedDiscoveryNegotiation(t *testing.T) {
	cases := []struct {
		accept, contentType string
		code                int
	}{
		{"", contentTypeJSON, http.StatusOK},
		{"*/*", contentTypeJSON, http.StatusOK},
		{"application/json", contentTypeJSON, http.StatusOK},
		{kubectlAccept, contentTypeV2, http.StatusOK},
		{"application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList", contentTypeV2Beta1, http.StatusOK},
		// Protobuf is not served: fall through to the next clause.
		{"application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json", contentTypeJSON, http.StatusOK},
		{"application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", contentTypeV2, http.StatusOK},
		{"application/json;as=Table;v=v1;g=meta.k8s.io", contentTypeJSON, http.StatusNotAcceptable},
		{"text/html", contentTypeJSON, http.StatusNotAcceptable},
	}
	srv := newServer(t)
	for _, c := range cases {
		for _, path := range []string{"/api", "/apis"} {
			resp := get(t, srv, path, c.accept, nil)
			if resp.StatusCode != c.code || resp.Header.Get("Content-Type") != c.contentType {
				t.Errorf("GET %s Accept %q: %d %q, want %d %q", path, c.accept, resp.StatusCode, resp.Header.Get("Content-Type"), c.code, c.contentType)
			}
		}
	}

	var beta apidiscoveryv2beta1.APIGroupDiscoveryList
	get(t, srv, "/apis", contentTypeV2Beta1, &beta)
	if beta.APIVersion != "apidiscovery.k8s.io/v2beta1" || len(beta.Items) != 2 {
		t.Fatalf("v2beta1 = %+v", beta)
	}
}

func TestAggregatedDiscoveryETagAnswersNotModified(t *testing.T) {
	srv := newServer(t)
	resp := get(t, srv, "/apis", kubectlAccept, nil)
	etag := resp.Header.Get("ETag")
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/apis", nil)
	req.Header.Set("Accept", kubectlAccept)
	req.Header.Set("If-None-Match", etag)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match %s: %d", etag, resp.StatusCode)
	}
}

func TestUnknownGroupVersionIsNotFoundStatus(t *testing.T) {
	srv := newServer(t)
	for _, path := range []string{"/apis/batch", "/apis/batch/v1", "/apis/apps/v2", "/api/v2"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var status metav1.Status
		err = json.NewDecoder(resp.Body).Decode(&status)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusNotFound || status.Kind != "Status" || status.Reason != metav1.StatusReasonNotFound || status.Code != 404 {
			t.Errorf("GET %s: %d %+v %v", path, resp.StatusCode, status, err)
		}
	}
}

// TestClientGoReadsBothDocuments checks the documents with the discovery
// client kubectl uses, in aggregated and legacy mode.
func TestClientGoReadsBothDocuments(t *testing.T) {
	srv := newServer(t)
	for _, legacy := range []bool{false, true} {
		client := discovery.NewDiscoveryClientForConfigOrDie(&rest.Config{Host: srv.URL})
		client.UseLegacyDiscovery = legacy
		groups, lists, err := client.ServerGroupsAndResources()
		if err != nil {
			t.Fatalf("legacy=%v: %v", legacy, err)
		}
		if len(groups) != 3 || groups[0].Name != "" || groups[1].Name != "apps" {
			t.Fatalf("legacy=%v: groups %+v", legacy, groups)
		}
		found := map[string]metav1.APIResource{}
		for _, l := range lists {
			gv, _ := schema.ParseGroupVersion(l.GroupVersion)
			for _, r := range l.APIResources {
				found[gv.WithResource(r.Name).String()] = r
			}
		}
		deploy := found[appsv1.SchemeGroupVersion.WithResource("deployments").String()]
		scale := found[appsv1.SchemeGroupVersion.WithResource("deployments/scale").String()]
		if deploy.Kind != "Deployment" || !slices.Equal(deploy.ShortNames, []string{"deploy"}) || scale.Kind != "Scale" || scale.Group != "autoscaling" {
			t.Fatalf("legacy=%v: deployments %+v, scale %+v", legacy, deploy, scale)
		}
	}
}
