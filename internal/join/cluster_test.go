package join

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/mizzen-dev/mizzen/internal/apiserver/authn"
)

func TestClusterIsServedToNodesAndAdministratorsOnly(t *testing.T) {
	want := Cluster{ClusterCIDR: "10.42.0.0/16", ServiceCIDR: "10.43.0.0/16", ClusterDNS: "10.43.0.10",
		ClusterDomain: "cluster.local", NetworkBackend: "vxlan"}
	r := chi.NewRouter()
	MountCluster(want)(r)
	for _, tc := range []struct {
		name string
		user *authn.User
		code int
	}{
		{"node", &authn.User{Name: "system:node:a", Groups: []string{"system:nodes", "system:authenticated"}}, http.StatusOK},
		{"admin", &authn.User{Name: "admin", Groups: []string{"system:masters", "system:authenticated"}}, http.StatusOK},
		{"service account", &authn.User{Name: "system:serviceaccount:default:x", Groups: []string{"system:serviceaccounts", "system:authenticated"}}, http.StatusForbidden},
		{"user named like a node", &authn.User{Name: "system:node:a", Groups: []string{"system:authenticated"}}, http.StatusForbidden},
		{"nobody", nil, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, ClusterPath, nil)
			if tc.user != nil {
				req = req.WithContext(authn.WithUser(req.Context(), *tc.user))
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != tc.code {
				t.Fatalf("GET %s as %s: %d %s, want %d", ClusterPath, tc.name, w.Code, w.Body, tc.code)
			}
			if tc.code != http.StatusOK {
				if !strings.Contains(w.Body.String(), `"kind":"Status"`) {
					t.Fatalf("refusal is not a Status: %s", w.Body)
				}
				return
			}
			var got Cluster
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got != want {
				t.Fatalf("body %s: %v, want %+v", w.Body, err, want)
			}
		})
	}
}
