// Package server is the kubelet's HTTP API: the authenticated HTTPS port
// the API server proxies pods/log, pods/exec and pods/attach to, and the
// plain read-only port with health, pods, machine spec, stats and metrics.
// The paths and answers are the real kubelet's.
package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

// Config is what the kubelet's HTTP API reads.
type Config struct {
	Runtime runtime.Runtime
	// Pods returns the pods bound to this node (the kubelet's informer
	// view); the objects are shared and never mutated here.
	Pods func() []*corev1.Pod
	// Container finds the runtime ID of container name of pod
	// namespace/pod; previous asks for the previous, terminated instance.
	// It returns an error wrapping runtime.ErrNotFound when there is none.
	Container func(namespace, pod, name string, previous bool) (string, error)
	// Node returns this node for /spec and the stats summary (may be nil).
	Node func() *corev1.Node
	// NodeName names the node in the stats summary when Node is nil.
	NodeName string
	// Metrics is served on /metrics of the read-only port (nil: a fresh,
	// unobserved one).
	Metrics *Metrics
	// Heartbeat is how often exec and attach streams ping their client to
	// notice one that left (0: 5s).
	Heartbeat time.Duration
	Log       *logrus.Entry
}

// mastersGroup is the group whose client certificates may use the API: the
// API server's kubelet client certificate and admins carry it.
const mastersGroup = "system:masters"

// Handler serves the authenticated kubelet API. It must be served over TLS
// that verifies client certificates (tls.VerifyClientCertIfGiven with the
// cluster CA): a request without a verified certificate gets 401, one whose
// certificate's organizations lack system:masters 403.
func Handler(cfg Config) http.Handler {
	s := newServer(cfg)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /pods", s.pods)
	mux.HandleFunc("GET /pods/{$}", s.pods)
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.containerLogs)
	for _, m := range []string{"GET", "POST"} {
		mux.HandleFunc(m+" /exec/{namespace}/{pod}/{container}", s.exec)
		mux.HandleFunc(m+" /attach/{namespace}/{pod}/{container}", s.attach)
	}
	s.mountReadOnly(mux)
	return authenticate(mux)
}

// ReadOnlyHandler serves the read-only port without authentication:
// /healthz, /pods, /spec, /stats/summary and /metrics.
func ReadOnlyHandler(cfg Config) http.Handler {
	s := newServer(cfg)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /pods", s.pods)
	mux.HandleFunc("GET /pods/{$}", s.pods)
	s.mountReadOnly(mux)
	return mux
}

// server holds the handlers' shared state.
type server struct {
	cfg     Config
	metrics *Metrics
	rates   rates // CPU samples for usage rates
	log     *logrus.Entry
	// heartbeat is the ping period of exec and attach streams.
	heartbeat time.Duration
}

func newServer(cfg Config) *server {
	m := cfg.Metrics
	if m == nil {
		m = NewMetrics()
	}
	log := cfg.Log
	if log == nil {
		log = logrus.NewEntry(logrus.StandardLogger())
	}
	hb := cfg.Heartbeat
	if hb <= 0 {
		hb = defaultHeartbeat
	}
	return &server{cfg: cfg, metrics: m, log: log, heartbeat: hb}
}

// mountReadOnly adds the machine, stats and metrics endpoints.
func (s *server) mountReadOnly(mux *http.ServeMux) {
	mux.HandleFunc("GET /spec", s.spec)
	mux.HandleFunc("GET /spec/{$}", s.spec)
	mux.HandleFunc("GET /stats/summary", s.summary)
	mux.Handle("GET /metrics", s.metrics.handler(s))
}

// authenticate lets through requests with a verified client certificate
// whose organizations include system:masters.
func authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
			httpError(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		cert := r.TLS.VerifiedChains[0][0]
		if !slices.Contains(cert.Subject.Organization, mastersGroup) {
			httpError(w, "Forbidden (user="+cert.Subject.CommonName+", verb="+verbOf(r)+", resource=nodes, subresource="+subresourceOf(r)+")", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// verbOf and subresourceOf describe a request in a 403 message the way the
// kubelet's authorizer does.
func verbOf(r *http.Request) string {
	switch r.Method {
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodDelete:
		return "delete"
	}
	return "get"
}

func subresourceOf(r *http.Request) string {
	p := r.URL.Path
	switch {
	case hasPrefix(p, "/stats"):
		return "stats"
	case hasPrefix(p, "/metrics"):
		return "metrics"
	case hasPrefix(p, "/spec"), hasPrefix(p, "/healthz"):
		return "proxy"
	case hasPrefix(p, "/containerLogs"), hasPrefix(p, "/logs"):
		return "log"
	}
	return "proxy"
}

func hasPrefix(p, prefix string) bool {
	return len(p) >= len(prefix) && p[:len(prefix)] == prefix
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok"))
}

// pods answers the node's pods as a v1 PodList.
func (s *server) pods(w http.ResponseWriter, r *http.Request) {
	list := corev1.PodList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PodList"}, Items: []corev1.Pod{}}
	for _, p := range s.podList() {
		list.Items = append(list.Items, *p)
	}
	writeJSON(w, list)
}

func (s *server) podList() []*corev1.Pod {
	if s.cfg.Pods == nil {
		return nil
	}
	return s.cfg.Pods()
}

// pod finds namespace/name among the node's pods.
func (s *server) pod(namespace, name string) *corev1.Pod {
	for _, p := range s.podList() {
		if p.Namespace == namespace && p.Name == name {
			return p
		}
	}
	return nil
}

// hasContainer reports whether the pod spec names container (app, init or
// ephemeral), as the kubelet checks before serving logs or exec.
func hasContainer(p *corev1.Pod, name string) bool {
	for _, c := range p.Spec.Containers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range p.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range p.Spec.EphemeralContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// containerNames lists the pod's app containers, then its init containers.
func containerNames(p *corev1.Pod) []string {
	var names []string
	for _, c := range p.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range p.Spec.InitContainers {
		names = append(names, c.Name)
	}
	return names
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// httpError answers code with msg as plain text, without the newline
// http.Error adds, as the kubelet's go-restful handlers do: the API server
// turns the body into a Status message.
func httpError(w http.ResponseWriter, msg string, code int) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg))
}
