package apiserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mizzen-dev/mizzen/internal/apiserver/authn"
	"github.com/mizzen-dev/mizzen/internal/apiserver/kinds"
	"github.com/mizzen-dev/mizzen/internal/apiserver/rest"
	"github.com/mizzen-dev/mizzen/internal/cache"
	"github.com/mizzen-dev/mizzen/internal/pki"
)

func nodeUser(name string) authn.User {
	return authn.User{Name: pki.NodeUserPrefix + name, Groups: []string{pki.NodesGroup, authn.AuthenticatedGroup}}
}

// nodeAuthzGraph is a pod graph over a memory cache holding a pod on
// node-a that references a secret, a configmap, a claim and a service
// account, and a pod on node-b that references others.
func nodeAuthzGraph(t *testing.T) *nodeGraph {
	t.Helper()
	k, ok := kinds.Registry().Lookup(corev1.SchemeGroupVersion.WithResource("pods"))
	if !ok {
		t.Fatal("no pods kind")
	}
	pods := cache.NewMemory("pods", rest.Indexes(k))
	pods.Put(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "on-a"},
		Spec: corev1.PodSpec{
			NodeName:           "node-a",
			ServiceAccountName: "sa-a",
			ImagePullSecrets:   []corev1.LocalObjectReference{{Name: "pull-a"}},
			Volumes: []corev1.Volume{
				{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "vol-a"}}},
				{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-a"}}}},
				{Name: "p", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "claim-a"}}},
				{Name: "pr", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "projected-a"}}},
				}}}},
			},
			Containers: []corev1.Container{{
				Name:    "c",
				EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "envfrom-a"}}}},
				Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "env-a"}, Key: "k"}}}},
			}},
		},
	})
	pods.Put(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "on-b"},
		Spec: corev1.PodSpec{NodeName: "node-b", Volumes: []corev1.Volume{
			{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "vol-b"}}},
		}},
	})
	pods.Put(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "pending"}})
	return &nodeGraph{pods: pods}
}

func TestNodeAuthorizer(t *testing.T) {
	s := fuzzServer(t)
	g := nodeAuthzGraph(t)
	for _, tc := range []struct {
		method, path string
		allowed      bool
	}{
		// Its own Node and its status; not another's.
		{"POST", "/api/v1/nodes", true},
		{"PATCH", "/api/v1/nodes/node-a", true},
		{"PUT", "/api/v1/nodes/node-a/status", true},
		{"PATCH", "/api/v1/nodes/node-a/status", true},
		{"PATCH", "/api/v1/nodes/node-b", false},
		{"PATCH", "/api/v1/nodes/node-b/status", false},
		{"GET", "/api/v1/nodes/node-a/status", true},
		{"GET", "/api/v1/nodes/node-b/status", false},
		{"DELETE", "/api/v1/nodes/node-b", false},
		{"DELETE", "/api/v1/nodes", false},
		{"GET", "/api/v1/nodes/node-b", true},
		{"GET", "/api/v1/nodes?watch=true", true},
		// Pods: read all, write status and delete only those bound to it.
		{"GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a", true},
		{"PUT", "/api/v1/namespaces/default/pods/on-a/status", true},
		{"PATCH", "/api/v1/namespaces/default/pods/on-a/status", true},
		{"PATCH", "/api/v1/namespaces/default/pods/on-b/status", false},
		{"PATCH", "/api/v1/namespaces/default/pods/pending/status", false},
		{"PATCH", "/api/v1/namespaces/default/pods/missing/status", false},
		{"DELETE", "/api/v1/namespaces/default/pods/on-a", true},
		{"DELETE", "/api/v1/namespaces/default/pods/on-b", false},
		{"PUT", "/api/v1/namespaces/default/pods/on-a", false},
		{"POST", "/api/v1/namespaces/default/pods", false},
		{"POST", "/api/v1/namespaces/default/pods/on-a/binding", false},
		// Objects that pods bound to it reference, and nothing else.
		{"GET", "/api/v1/namespaces/default/secrets/vol-a", true},
		{"GET", "/api/v1/namespaces/default/secrets/env-a", true},
		{"GET", "/api/v1/namespaces/default/secrets/pull-a", true},
		{"GET", "/api/v1/namespaces/default/secrets/projected-a", true},
		{"GET", "/api/v1/namespaces/default/secrets/vol-b", false},
		{"GET", "/api/v1/namespaces/other/secrets/vol-a", false},
		{"GET", "/api/v1/namespaces/default/secrets/cm-a", false},
		{"GET", "/api/v1/namespaces/default/secrets", false},
		{"GET", "/api/v1/namespaces/default/configmaps/cm-a", true},
		{"GET", "/api/v1/namespaces/default/configmaps/envfrom-a", true},
		{"GET", "/api/v1/namespaces/default/configmaps/vol-a", false},
		{"GET", "/api/v1/namespaces/default/serviceaccounts/sa-a", true},
		{"GET", "/api/v1/namespaces/default/serviceaccounts/default", false},
		// Leases: its own in kube-node-lease.
		{"POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", true},
		{"GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-a", true},
		{"PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-a", true},
		{"DELETE", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-a", true},
		{"GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases?watch=1", true},
		{"PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-b", false},
		{"GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-b", false},
		{"POST", "/apis/coordination.k8s.io/v1/namespaces/default/leases", false},
		// Reads the kubelet and proxy need; events; nothing else.
		{"GET", "/api/v1/services", true},
		{"GET", "/api/v1/endpoints?watch=true", true},
		{"GET", "/apis/discovery.k8s.io/v1/endpointslices", true},
		{"GET", "/api/v1/namespaces/default", true},
		{"POST", "/api/v1/namespaces/default/events", true},
		{"PATCH", "/api/v1/namespaces/default/events/e", true},
		{"POST", "/apis/events.k8s.io/v1/namespaces/default/events", true},
		{"DELETE", "/api/v1/namespaces/default/events/e", false},
		{"POST", "/api/v1/namespaces/default/services", false},
		{"GET", "/apis/apps/v1/deployments", false},
		{"DELETE", "/api/v1/namespaces/default", false},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rq, err := s.parse(strings.Split(tc.path, "?")[0])
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(tc.method, tc.path, nil)
			r = r.WithContext(authn.WithUser(r.Context(), nodeUser("node-a")))
			err = authorizeWith(r, rq, g)
			if tc.allowed && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tc.allowed && !apierrors.IsForbidden(err) {
				t.Errorf("got %v, want 403 Forbidden", err)
			}
		})
	}
}

func TestNodeAuthorizerNeedsNodesGroupAndGraph(t *testing.T) {
	s := fuzzServer(t)
	rq, err := s.parse("/api/v1/namespaces/default/pods/on-a/status")
	if err != nil {
		t.Fatal(err)
	}
	for name, u := range map[string]authn.User{
		"not in system:nodes": {Name: "system:node:node-a", Groups: []string{authn.AuthenticatedGroup}},
		"bootstrap user":      {Name: "node-bootstrap", Groups: []string{"system:bootstrappers", authn.AuthenticatedGroup}},
	} {
		r := httptest.NewRequest("PATCH", "/api/v1/namespaces/default/pods/on-a/status", nil)
		r = r.WithContext(authn.WithUser(r.Context(), u))
		if err := authorizeWith(r, rq, nodeAuthzGraph(t)); !apierrors.IsForbidden(err) {
			t.Errorf("%s: got %v, want 403", name, err)
		}
	}
	r := httptest.NewRequest("PATCH", "/api/v1/namespaces/default/pods/on-a/status", nil)
	r = r.WithContext(authn.WithUser(r.Context(), nodeUser("node-a")))
	if err := authorizeWith(r, rq, nil); !apierrors.IsForbidden(err) {
		t.Errorf("without a graph: got %v, want 403", err)
	}
}

// TestNodeForbiddenOverHTTP sends refused requests through the real
// handler and checks the Status Kubernetes would send.
func TestNodeForbiddenOverHTTP(t *testing.T) {
	scheme, err := kinds.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	s := fuzzServer(t)
	srv := New(Config{
		Store: rest.New(kinds.Registry(), nil, nil), Scheme: scheme, Log: s.log,
		Authenticate: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, r.WithContext(authn.WithUser(r.Context(), nodeUser("node-a"))))
			})
		},
	})
	for _, tc := range []struct{ method, path, message string }{
		{"PATCH", "/api/v1/nodes/node-b",
			`nodes "node-b" is forbidden: User "system:node:node-a" cannot patch resource "nodes" in API group "" at the cluster scope: node 'node-a' cannot modify node 'node-b'`},
		{"GET", "/apis/apps/v1/namespaces/default/deployments",
			`deployments.apps is forbidden: User "system:node:node-a" cannot list resource "deployments" in API group "apps" in the namespace "default"`},
		{"PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-b",
			`leases.coordination.k8s.io "node-b" is forbidden: User "system:node:node-a" cannot update resource "leases" in API group "coordination.k8s.io" in the namespace "kube-node-lease": node 'node-a' can only access its own lease`},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			srv.Handler().ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, strings.NewReader("{}")))
			var st metav1.Status
			if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
				t.Fatalf("decode %q: %v", w.Body.String(), err)
			}
			if w.Code != http.StatusForbidden || st.Kind != "Status" || st.Reason != metav1.StatusReasonForbidden || st.Message != tc.message {
				t.Errorf("got %d %+v\nwant 403 with message %s", w.Code, st, tc.message)
			}
		})
	}
}
