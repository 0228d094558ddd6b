package apiserver

import (
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/mizzen-dev/mizzen/internal/apiserver/authn"
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

// authorize lets members of system:masters do anything; other users (the
// join token's bootstrap identity until nodes get their own) may use
// discovery but touch no resource. Requests that carry no user (the
// handler used without authentication, in tests) pass.
func authorize(r *http.Request, rq request) error {
	u, ok := authn.UserFrom(r.Context())
	if !ok {
		return nil
	}
	for _, g := range u.Groups {
		if g == mastersGroup {
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
	return apierrors.NewForbidden(rq.kind.GroupResource(), rq.name,
		fmt.Errorf("User %q cannot %s resource %q in API group %q %s", u.Name, verb(r, rq), resource, rq.kind.GVR.Group, where))
}
