package apiserver

import (
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/mizzen-dev/mizzen/internal/apiserver/authn"
	"github.com/mizzen-dev/mizzen/internal/pki"
)

// mastersGroup may do everything, as in Kubernetes.
const mastersGroup = "system:masters"

// verb returns the Kubernetes verb of a resource request.
func verb(r *http.Request, rq request) string {
	q := r.URL.Query()
	switch r.Method {
	case http.MethodGet:
		switch {
		case rq.name != "":
			return "get"
		case q.Get("watch") == "true" || q.Get("watch") == "1":
			return "watch"
		}
		return "list"
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		if rq.name == "" {
			return "deletecollection"
		}
		return "delete"
	}
	return r.Method
}

// authorize decides a request with the pods in the store's cache as the
// node graph (see authorizeWith).
func (s *Server) authorize(r *http.Request, rq request) error {
	var g *nodeGraph
	if s.store != nil && s.store.Cache() != nil {
		if k, ok := s.reg.Lookup(corev1.SchemeGroupVersion.WithResource("pods")); ok {
			g = &nodeGraph{pods: s.store.Resource(k)}
		}
	}
	return authorizeWith(r, rq, g)
}

// authorizeWith lets members of system:masters do anything and nodes what
// the Node authorizer lets them (authorizeNode); other users (the join
// token's bootstrap identity) may use discovery but touch no resource.
// Requests that carry no user (the handler used without authentication, in
// tests) pass.
func authorizeWith(r *http.Request, rq request, g *nodeGraph) error {
	u, ok := authn.UserFrom(r.Context())
	if !ok {
		return nil
	}
	for _, g := range u.Groups {
		if g == mastersGroup {
			return nil
		}
	}
	v := verb(r, rq)
	reason := ""
	if node, ok := pki.NodeName(u.Name, u.Groups); ok {
		if reason = authorizeNode(node, v, rq, g); reason == "" {
			return nil
		}
	}
	resource := rq.kind.GVR.Resource
	if rq.sub != "" {
		resource += "/" + rq.sub
	}
	where := "at the cluster scope"
	if rq.namespace != "" {
		where = fmt.Sprintf("in the namespace %q", rq.namespace)
	}
	msg := fmt.Sprintf("User %q cannot %s resource %q in API group %q %s", u.Name, v, resource, rq.kind.GVR.Group, where)
	if reason != "" && reason != noRule {
		msg += ": " + reason
	}
	return apierrors.NewForbidden(rq.kind.GroupResource(), rq.name, fmt.Errorf("%s", msg))
}
