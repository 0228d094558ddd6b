package join

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/go-chi/chi/v5"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/apiserver/authn"
)

// ClusterPath serves the cluster-wide settings that every agent follows,
// so that they are given once, to the server.
const ClusterPath = "/v1-mizzen/cluster"

// Cluster is the cluster-wide network configuration agents follow.
type Cluster struct {
	ClusterCIDR    string `json:"clusterCIDR"`
	ServiceCIDR    string `json:"serviceCIDR"`
	ClusterDNS     string `json:"clusterDNS"`
	ClusterDomain  string `json:"clusterDomain"`
	NetworkBackend string `json:"networkBackend"`
}

// MountCluster returns a mount serving c at ClusterPath to nodes and
// cluster administrators.
func MountCluster(c Cluster) func(chi.Router) {
	body, err := json.Marshal(c)
	if err != nil {
		panic(err) // strings only
	}
	return func(r chi.Router) {
		r.Get(ClusterPath, func(w http.ResponseWriter, r *http.Request) {
			u, ok := authn.UserFrom(r.Context())
			if !ok {
				writeStatus(w, apierrors.NewUnauthorized("Unauthorized"))
				return
			}
			if !slices.Contains(u.Groups, "system:nodes") && !slices.Contains(u.Groups, "system:masters") {
				writeStatus(w, apierrors.NewForbidden(schema.GroupResource{}, "",
					errForbiddenPath(u.Name, ClusterPath)))
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		})
	}
}

type forbiddenPath struct{ user, path string }

func (e forbiddenPath) Error() string {
	return "User \"" + e.user + "\" cannot get path \"" + e.path + "\""
}

func errForbiddenPath(user, path string) error { return forbiddenPath{user, path} }
