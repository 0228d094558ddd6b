package apiserver

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/apiserver/authn"
)

// monitoringGroup may read /metrics, as the system:monitoring ClusterRole
// lets it in Kubernetes.
const monitoringGroup = "system:monitoring"

// requestBuckets are kube-apiserver's buckets for request latency.
var requestBuckets = []float64{0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60}

// etcdBuckets are kube-apiserver's buckets for etcd request latency.
var etcdBuckets = []float64{0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60}

// requestLabels are the labels of apiserver_request_total, as in
// Kubernetes (dry_run is left out: mizzen has no dry run).
var requestLabels = []string{"verb", "group", "version", "resource", "subresource", "scope", "component", "code"}

// Metrics are the API server's Prometheus metrics, with Kubernetes' names,
// and the registry its /metrics serves (which the other components of the
// server register in too).
type Metrics struct {
	handler     http.Handler // serves the registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	longRunning *prometheus.GaugeVec
	watchers    *prometheus.GaugeVec
	inflight    *prometheus.GaugeVec
	etcd        *prometheus.HistogramVec
	etcdErrors  *prometheus.CounterVec
}

// NewMetrics registers the API server's metrics in reg.
func NewMetrics(reg *prometheus.Registry) (*Metrics, error) {
	m := &Metrics{
		handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_request_total",
			Help: "Counter of apiserver requests broken out for each verb, group, version, resource, scope, component, and HTTP response code.",
		}, requestLabels),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "apiserver_request_duration_seconds",
			Help:    "Response latency distribution in seconds for each verb, group, version, resource, subresource, scope and component.",
			Buckets: requestBuckets,
		}, requestLabels[:7]),
		longRunning: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apiserver_longrunning_requests",
			Help: "Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component.",
		}, requestLabels[:7]),
		watchers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apiserver_registered_watchers",
			Help: "Number of currently registered watchers for a given resources",
		}, []string{"group", "version", "kind"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apiserver_current_inflight_requests",
			Help: "Number of requests currently being served, by kind (readOnly or mutating); long-running requests are not counted.",
		}, []string{"request_kind"}),
		etcd: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "etcd_request_duration_seconds",
			Help:    "Etcd request latency in seconds for each operation and object type.",
			Buckets: etcdBuckets,
		}, []string{"operation", "type"}),
		etcdErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcd_request_errors_total",
			Help: "Etcd failed request counts for each operation and object type.",
		}, []string{"operation", "type"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.longRunning, m.watchers, m.inflight, m.etcd, m.etcdErrors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ObserveEtcd records one etcd request of the storage layer (its
// storage.Observer): operation is get, create, update, delete, list...,
// typ the resource ("pods", "deployments.apps").
func (m *Metrics) ObserveEtcd(operation, typ string, elapsed time.Duration, err error) {
	m.etcd.WithLabelValues(operation, typ).Observe(elapsed.Seconds())
	if err != nil {
		m.etcdErrors.WithLabelValues(operation, typ).Inc()
	}
}

// requestInfo is what the request metrics say of a request.
type requestInfo struct {
	labels      []string // verb, group, version, resource, subresource, scope, component
	longRunning bool
	watchKind   schema.GroupVersionKind
	mutating    bool
}

// describe labels a request: a resource request by its parsed path, any
// other by its first path segment (only paths the server serves, so a
// scan of random paths cannot grow the label sets).
func (s *Server) describe(r *http.Request) requestInfo {
	rq, err := s.parse(r.URL.Path)
	if err != nil {
		sub := ""
		if p := "/" + strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)[0]; nonResourcePaths[p] {
			sub = p
		}
		return requestInfo{labels: []string{method(r), "", "", "", sub, "", "apiserver"}, mutating: r.Method != http.MethodGet && r.Method != http.MethodHead}
	}
	v := verb(r, rq)
	if v == r.Method { // not a Kubernetes verb ("get" in lower case neither)
		v = method(r)
	} else {
		v = strings.ToUpper(v)
	}
	switch {
	case rq.sub == "exec" || rq.sub == "attach" || rq.sub == "portforward" || rq.sub == "proxy":
		v = "CONNECT"
	case v == "CREATE":
		v = http.MethodPost
	case v == "UPDATE":
		v = http.MethodPut
	case v == "DELETECOLLECTION": // kube-apiserver reports the method
		v = http.MethodDelete
	case v == "PATCH" && r.Header.Get("Content-Type") == "application/apply-patch+yaml":
		v = "APPLY"
	}
	scope := "cluster"
	switch {
	case rq.name != "" || v == http.MethodPost: // a create is "resource", as kube-apiserver has it
		scope = "resource"
	case rq.namespace != "":
		scope = "namespace"
	}
	gvr := rq.kind.GVR
	info := requestInfo{
		labels:      []string{v, gvr.Group, gvr.Version, gvr.Resource, rq.sub, scope, "apiserver"},
		longRunning: v == "WATCH" || v == "CONNECT" || rq.sub == "log",
		mutating:    r.Method != http.MethodGet,
	}
	if v == "WATCH" {
		info.watchKind = rq.kind.GroupVersionKind()
	}
	return info
}

// method is the request's method, or "other" for one HTTP does not
// define (so that random methods cannot grow the label sets).
func method(r *http.Request) string {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
		http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return r.Method
	}
	return "other"
}

// nonResourcePaths are the non-resource paths counted by their own name.
var nonResourcePaths = map[string]bool{
	"/api": true, "/apis": true, "/healthz": true, "/livez": true, "/readyz": true, "/version": true,
	"/metrics": true, "/openapi": true,
}

// instrument counts and times every request: apiserver_request_total,
// apiserver_request_duration_seconds, and the gauges of requests in flight.
func (s *Server) instrument(next http.Handler) http.Handler {
	m := s.cfg.Metrics
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := s.describe(r)
		var gauge prometheus.Gauge
		switch {
		case info.longRunning:
			gauge = m.longRunning.WithLabelValues(info.labels...)
		case info.mutating:
			gauge = m.inflight.WithLabelValues("mutating")
		default:
			gauge = m.inflight.WithLabelValues("readOnly")
		}
		gauge.Inc()
		defer gauge.Dec()
		if !info.watchKind.Empty() {
			wg := m.watchers.WithLabelValues(info.watchKind.Group, info.watchKind.Version, info.watchKind.Kind)
			wg.Inc()
			defer wg.Dec()
		}
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			m.requests.WithLabelValues(append(info.labels, strconv.Itoa(rec.code))...).Inc()
			m.latency.WithLabelValues(info.labels...).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(rec, r)
	})
}

// serveMetrics serves /metrics in the Prometheus text format to
// system:masters and system:monitoring.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if u, ok := authn.UserFrom(r.Context()); ok && !inGroup(u.Groups, mastersGroup, monitoringGroup) {
		err := apierrors.NewForbidden(schema.GroupResource{}, "", errors.New(`User "`+u.Name+`" cannot get path "/metrics"`))
		err.ErrStatus.Message = `forbidden: User "` + u.Name + `" cannot get path "/metrics"`
		s.codecs.writeError(w, r, err)
		return
	}
	s.cfg.Metrics.handler.ServeHTTP(w, r)
}

// inGroup says whether groups holds any of want.
func inGroup(groups []string, want ...string) bool {
	for _, g := range groups {
		for _, w := range want {
			if g == w {
				return true
			}
		}
	}
	return false
}
