package authn

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type userKey struct{}

// WithUser returns a copy of ctx carrying u.
func WithUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the user that ctx carries, if any.
func UserFrom(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userKey{}).(User)
	return u, ok
}

// unauthorizedBody is the Status Kubernetes sends with a 401, encoded the
// way its JSON serializer does (with a trailing newline).
var unauthorizedBody = func() []byte {
	status := apierrors.NewUnauthorized("Unauthorized").ErrStatus
	status.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	var buf bytes.Buffer
	// Encoding a fixed Status value cannot fail.
	_ = json.NewEncoder(&buf).Encode(status)
	return buf.Bytes()
}()

// Middleware authenticates every request with a. An authenticated request
// reaches the next handler with its user in the context (see UserFrom) and
// its Authorization header removed, so no later handler can forward the
// credential. Any other request gets 401 with a Kubernetes Status body,
// except that one carrying no Authorization header goes on without a user
// when public(path) is true. As in Kubernetes, a bad credential is refused
// even on a public path. A nil public makes no path public.
func Middleware(a *Authenticator, public func(path string) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, ok := a.Authenticate(r)
			switch {
			case ok:
				r = r.WithContext(WithUser(r.Context(), u))
				if r.Header.Get("Authorization") != "" {
					r.Header = r.Header.Clone()
					r.Header.Del("Authorization")
				}
			case public == nil || !public(r.URL.Path) || r.Header.Get("Authorization") != "":
				writeUnauthorized(w)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func writeUnauthorized(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write(unauthorizedBody)
}

// Public reports whether path is served without authentication: /version,
// and /healthz, /livez and /readyz with their sub-paths (/readyz/etcd).
// Paths with "." or ".." segments or repeated slashes are never public, so
// /readyz/../api cannot reach a protected handler.
func Public(p string) bool {
	if path.Clean(p) != strings.TrimSuffix(p, "/") {
		return false
	}
	if p == "/version" {
		return true
	}
	for _, prefix := range []string{"/healthz", "/livez", "/readyz"} {
		if p == prefix || strings.HasPrefix(p, prefix+"/") {
			return true
		}
	}
	return false
}
