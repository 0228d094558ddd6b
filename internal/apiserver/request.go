package apiserver

import (
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// request is a parsed resource path.
type request struct {
	kind      *registry.Kind
	namespace string
	name      string
	sub       string
}

// parse resolves /api/v1/... and /apis/<group>/<version>/... paths.
func (s *Server) parse(path string) (request, error) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var gv schema.GroupVersion
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		gv, parts = schema.GroupVersion{Version: parts[1]}, parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		gv, parts = schema.GroupVersion{Group: parts[1], Version: parts[2]}, parts[3:]
	default:
		return request{}, notFound()
	}
	for _, p := range parts {
		if p == "" {
			return request{}, notFound()
		}
	}
	var rq request
	if parts[0] == "namespaces" && len(parts) >= 3 && !(len(parts) == 3 && (parts[2] == "status" || parts[2] == "finalize")) {
		rq.namespace, parts = parts[1], parts[2:]
	}
	if len(parts) > 3 {
		return request{}, notFound()
	}
	k, ok := s.reg.Lookup(gv.WithResource(parts[0]))
	if !ok {
		return request{}, notFound()
	}
	rq.kind = k
	if rq.namespace != "" && !k.Namespaced {
		return request{}, notFound()
	}
	if len(parts) > 1 {
		rq.name = parts[1]
	}
	if len(parts) > 2 {
		rq.sub = parts[2]
		if !hasSubresource(k, rq.sub) {
			return request{}, notFound()
		}
	}
	return rq, nil
}

func hasSubresource(k *registry.Kind, sub string) bool {
	switch sub {
	case "status":
		return k.Status
	case "scale":
		return k.Scale
	case "finalize":
		return k.GVR == namespacesGVR
	}
	for _, s := range k.Subresources {
		if s == sub {
			return true
		}
	}
	return false
}

func notFound() error {
	return apierrors.NewGenericServerResponse(http.StatusNotFound, "", schema.GroupResource{}, "", "the server could not find the requested resource", 0, false)
}

func methodNotAllowed(k *registry.Kind, verb string) error {
	return apierrors.NewMethodNotSupported(k.GroupResource(), verb)
}
