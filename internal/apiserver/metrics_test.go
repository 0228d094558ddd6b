package apiserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mizzen-dev/mizzen/internal/apiserver/authn"
	"github.com/mizzen-dev/mizzen/internal/apiserver/kinds"
	"github.com/mizzen-dev/mizzen/internal/apiserver/rest"
)

// metricsServer is a Server with metrics whose requests carry the user
// named by the X-Test-User header (a node, or an admin when "admin").
func metricsServer(t *testing.T) http.Handler {
	t.Helper()
	scheme, err := kinds.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Config{
		Store: rest.New(kinds.Registry(), nil, nil), Scheme: scheme, Log: fuzzServer(t).log, Metrics: m,
		Authenticate: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				u := nodeUser("node-a")
				if r.Header.Get("X-Test-User") == "admin" {
					u = authn.User{Name: "system:admin", Groups: []string{mastersGroup}}
				}
				next.ServeHTTP(w, r.WithContext(authn.WithUser(r.Context(), u)))
			})
		},
	})
	m.ObserveEtcd("get", "pods", 0, nil)
	return srv.Handler()
}

func TestMetricsCountRequestsByVerbResourceAndCode(t *testing.T) {
	h := metricsServer(t)
	for _, tc := range []struct{ method, path string }{
		{"PATCH", "/api/v1/nodes/node-b"},                                // 403
		{"GET", "/apis/apps/v1/namespaces/default/deployments"},          // 403
		{"GET", "/apis/apps/v1/namespaces/default/deployments"},          // 403
		{"POST", "/apis/apps/v1/namespaces/default/deployments/x/scale"}, // 403
		{"GET", "/healthz"},
		{"GET", "/no/such/path"},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(tc.method, tc.path, strings.NewReader("{}")))
	}
	r := httptest.NewRequest("GET", "/metrics", nil)
	r.Header.Set("X-Test-User", "admin")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /metrics as admin: %d %s", w.Code, w.Body)
	}
	body := w.Body.String()
	for _, want := range []string{
		`apiserver_request_total{code="403",component="apiserver",group="",resource="nodes",scope="resource",subresource="",verb="PATCH",version="v1"} 1`,
		`apiserver_request_total{code="403",component="apiserver",group="apps",resource="deployments",scope="namespace",subresource="",verb="LIST",version="v1"} 2`,
		`apiserver_request_total{code="403",component="apiserver",group="apps",resource="deployments",scope="resource",subresource="scale",verb="POST",version="v1"} 1`,
		`apiserver_request_total{code="200",component="apiserver",group="",resource="",scope="",subresource="/healthz",verb="GET",version=""} 1`,
		`apiserver_request_total{code="404",component="apiserver",group="",resource="",scope="",subresource="",verb="GET",version=""} 1`,
		`apiserver_request_duration_seconds_count{component="apiserver",group="apps",resource="deployments",scope="namespace",subresource="",verb="LIST",version="v1"} 2`,
		`etcd_request_duration_seconds_count{operation="get",type="pods"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

func TestMetricsForbiddenToOtherUsers(t *testing.T) {
	w := httptest.NewRecorder()
	metricsServer(t).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	var st metav1.Status
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
		t.Fatalf("decode %q: %v", w.Body, err)
	}
	want := `forbidden: User "system:node:node-a" cannot get path "/metrics"`
	if w.Code != http.StatusForbidden || st.Reason != metav1.StatusReasonForbidden || st.Message != want {
		t.Errorf("got %d %+v, want 403 %q", w.Code, st, want)
	}
}

func TestDescribeLabelsRequestsAsKubernetes(t *testing.T) {
	s := fuzzServer(t)
	for _, tc := range []struct {
		method, target, contentType string
		labels                      string // verb group version resource subresource scope
		longRunning                 bool
	}{
		{"GET", "/api/v1/pods", "", "LIST  v1 pods  cluster", false},
		{"GET", "/api/v1/namespaces/a/pods?watch=true", "", "WATCH  v1 pods  namespace", true},
		{"GET", "/api/v1/namespaces/a/pods/p/log?follow=true", "", "GET  v1 pods log resource", true},
		// kube-apiserver counts every log request as long-running.
		{"GET", "/api/v1/namespaces/a/pods/p/log", "", "GET  v1 pods log resource", true},
		{"POST", "/api/v1/namespaces/a/pods/p/exec", "", "CONNECT  v1 pods exec resource", true},
		{"PATCH", "/apis/apps/v1/namespaces/a/deployments/d", "application/apply-patch+yaml", "APPLY apps v1 deployments  resource", false},
		{"PATCH", "/apis/apps/v1/namespaces/a/deployments/d/scale", "application/merge-patch+json", "PATCH apps v1 deployments scale resource", false},
		{"PUT", "/api/v1/namespaces/a", "", "PUT  v1 namespaces  resource", false},
		// kube-apiserver reports the method (DELETE, not DELETECOLLECTION)
		// and a create's scope as "resource" (metrics.CleanScope).
		{"DELETE", "/api/v1/namespaces/a/pods", "", "DELETE  v1 pods  namespace", false},
		{"POST", "/api/v1/namespaces/a/pods", "", "POST  v1 pods  resource", false},
		{"POST", "/api/v1/namespaces", "", "POST  v1 namespaces  resource", false},
		{"GET", "/openapi/v2", "", "GET    /openapi ", false},
		{"GET", "/random", "", "GET     ", false},
		{"FROB", "/api/v1/pods", "", "other  v1 pods  cluster", false},
		{"FROB", "/random", "", "other     ", false},
		// Methods are case-sensitive: one in lower case is no verb, and
		// must not become a label value of its own.
		{"frob", "/api/v1/pods", "", "other  v1 pods  cluster", false},
		{"get", "/api/v1/namespaces/a/pods/p", "", "other  v1 pods  resource", false},
	} {
		r := httptest.NewRequest(tc.method, tc.target, nil)
		r.Header.Set("Content-Type", tc.contentType)
		info := s.describe(r)
		if got := strings.Join(info.labels[:6], " "); got != tc.labels || info.longRunning != tc.longRunning || info.labels[6] != "apiserver" {
			t.Errorf("%s %s: labels %q long-running %v, want %q %v", tc.method, tc.target, got, info.longRunning, tc.labels, tc.longRunning)
		}
	}
}
