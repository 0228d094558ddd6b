// Package apiserver serves the Kubernetes REST API over HTTPS: routing,
// content negotiation, the verbs, watch, tables and subresources, generic
// over the registry of kinds.
package apiserver

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
	"github.com/mizzen-dev/mizzen/internal/apiserver/rest"
)

var namespacesGVR = corev1.SchemeGroupVersion.WithResource("namespaces")

// Config holds what the API server needs.
type Config struct {
	Store  *rest.Store
	Scheme *runtime.Scheme
	// Authenticate wraps every handler; it lets public paths through.
	Authenticate func(http.Handler) http.Handler
	// Mounts add routes (discovery, OpenAPI) to the authenticated router.
	Mounts  []func(chi.Router)
	Version version.Info
	// Checks are the readiness checks by name (etcd, informer-sync...).
	Checks map[string]func() error
	// Kubelet is how the API server reaches kubelets (nil: pods/log, exec
	// and attach answer 503).
	Kubelet *KubeletClient
	// Metrics, when set, counts requests and is served at /metrics.
	Metrics *Metrics
	Log     *logrus.Entry
}

// Server is the HTTP handler of the API.
type Server struct {
	cfg    Config
	reg    *registry.Registry
	store  *rest.Store
	codecs *codecs
	log    *logrus.Entry
}

// New builds a Server.
func New(cfg Config) *Server {
	return &Server{cfg: cfg, reg: cfg.Store.Registry(), store: cfg.Store, codecs: newCodecs(cfg.Scheme), log: cfg.Log}
}

// Handler returns the routed, authenticated handler.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	if s.cfg.Metrics != nil {
		r.Use(s.instrument) // first, to count the 500s of recovered panics
	}
	r.Use(s.recoverPanics)
	if s.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		r.Use(s.logRequests)
	}
	if s.cfg.Authenticate != nil {
		r.Use(s.cfg.Authenticate)
	}
	r.Get("/healthz", s.health(false))
	r.Get("/livez", s.health(false))
	r.Get("/readyz", s.health(true))
	r.Get("/version", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.cfg.Version)
	})
	if s.cfg.Metrics != nil {
		r.Get("/metrics", s.serveMetrics)
	}
	for _, m := range s.cfg.Mounts {
		m(r)
	}
	r.HandleFunc("/api/*", s.serveResource)
	r.HandleFunc("/apis/*", s.serveResource)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { s.codecs.writeError(w, r, notFound()) })
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) { s.codecs.writeError(w, r, notFound()) })
	return r
}

// recoverPanics turns a handler's panic into a logged error and a 500
// Status, so a bug fails one request and never the process.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.WithFields(logrus.Fields{"method": r.Method, "uri": r.URL.RequestURI(), "panic": p}).
					Errorf("handler panic\n%s", debug.Stack())
				s.codecs.writeError(w, r, apierrors.NewInternalError(fmt.Errorf("%v", p)))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// logRequests logs each request at debug level.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.log.WithFields(logrus.Fields{"method": r.Method, "uri": r.URL.RequestURI(), "code": rec.code,
			"elapsed": time.Since(start).Round(time.Microsecond)}).Debug("request")
	})
}

// statusRecorder remembers the status code written.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (to hijack it
// for exec and attach upgrades).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Hijack hands the connection over (exec and attach upgrades) and records
// the 101 Switching Protocols the upgrade answers with on it.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil {
		r.code = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// health answers /healthz, /livez and /readyz: "ok", or the failed checks
// with 500.
func (s *Server) health(ready bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		var failed []string
		var lines []string
		for name, check := range s.cfg.Checks {
			if err := check(); err != nil {
				failed = append(failed, name)
				lines = append(lines, "[-]"+name+" failed: "+err.Error())
			} else {
				lines = append(lines, "[+]"+name+" ok")
			}
		}
		if !ready && len(failed) == 0 {
			_, _ = w.Write([]byte("ok"))
			return
		}
		if len(failed) > 0 {
			w.WriteHeader(http.StatusInternalServerError)
			for _, l := range lines {
				_, _ = w.Write([]byte(l + "\n"))
			}
			_, _ = w.Write([]byte("readyz check failed\n"))
			return
		}
		if r.URL.Query().Has("verbose") {
			for _, l := range lines {
				_, _ = w.Write([]byte(l + "\n"))
			}
			_, _ = w.Write([]byte("readyz check passed\n"))
			return
		}
		_, _ = w.Write([]byte("ok"))
	}
}

// serveResource dispatches a resource request to its verb.
func (s *Server) serveResource(w http.ResponseWriter, r *http.Request) {
	rq, err := s.parse(r.URL.Path)
	if err == nil {
		err = s.authorize(r, rq)
	}
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	switch r.Method {
	case http.MethodGet:
		switch {
		case rq.name == "" && (q.Get("watch") == "true" || q.Get("watch") == "1"):
			s.watch(w, r, rq)
		case rq.name == "":
			s.list(w, r, rq)
		case rq.sub == "" || rq.sub == "status":
			s.get(w, r, rq)
		case rq.sub == "scale":
			s.getScale(w, r, rq)
		case rq.sub == "log":
			s.podLog(w, r, rq)
		case rq.sub == "exec" || rq.sub == "attach":
			s.proxyStream(w, r, rq)
		default:
			s.codecs.writeError(w, r, methodNotAllowed(rq.kind, "get "+rq.sub))
		}
	case http.MethodPost:
		switch {
		case rq.name == "":
			s.create(w, r, rq)
		case rq.sub == "binding":
			s.bind(w, r, rq)
		case rq.sub == "exec" || rq.sub == "attach":
			s.proxyStream(w, r, rq)
		default:
			s.codecs.writeError(w, r, methodNotAllowed(rq.kind, "create"))
		}
	case http.MethodPut, http.MethodPatch:
		switch {
		case rq.name == "" || rq.sub == "binding" || rq.sub == "log" || rq.sub == "exec" || rq.sub == "attach":
			s.codecs.writeError(w, r, methodNotAllowed(rq.kind, "update"))
		case rq.sub == "scale":
			s.updateScale(w, r, rq)
		case r.Method == http.MethodPut:
			s.update(w, r, rq)
		default:
			s.patch(w, r, rq)
		}
	case http.MethodDelete:
		switch {
		case rq.sub != "":
			s.codecs.writeError(w, r, methodNotAllowed(rq.kind, "delete"))
		case rq.name == "":
			s.deleteCollection(w, r, rq)
		default:
			s.delete(w, r, rq)
		}
	default:
		s.codecs.writeError(w, r, methodNotAllowed(rq.kind, r.Method))
	}
}
