package server

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

// Metrics are the kubelet's Prometheus metrics, in a registry of their own.
// The kubelet observes pod start latency; the running pod and container
// gauges are read from the runtime when scraped.
type Metrics struct {
	reg      *prometheus.Registry
	podStart prometheus.Histogram
	source   atomic.Pointer[server] // the server whose runtime the gauges read
}

// podStartBuckets are the kubelet's buckets for pod start durations.
var podStartBuckets = []float64{0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600}

var (
	runningPodsDesc = prometheus.NewDesc("kubelet_running_pods",
		"Number of pods that have a running pod sandbox", nil, nil)
	runningContainersDesc = prometheus.NewDesc("kubelet_running_containers",
		"Number of containers currently running", []string{"container_state"}, nil)
)

// NewMetrics returns the kubelet's metrics, registered in a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		podStart: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kubelet_pod_start_duration_seconds",
			Help:    "Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run",
			Buckets: podStartBuckets,
		}),
	}
	// The kubelet's /metrics carries the Go runtime and process metrics
	// (go_goroutines, process_resident_memory_bytes, ...) too.
	m.reg.MustRegister(m.podStart, collector{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObservePodStart records how long a pod took from first sight to running.
func (m *Metrics) ObservePodStart(d time.Duration) { m.podStart.Observe(d.Seconds()) }

// Registry is where the metrics are registered, for the kubelet to add its
// own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// handler serves the metrics, with gauges read through s.
func (m *Metrics) handler(s *server) http.Handler {
	m.source.CompareAndSwap(nil, s)
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// collector reads the running pod and container gauges from the runtime.
type collector struct{ m *Metrics }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- runningPodsDesc
	ch <- runningContainersDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.source.Load()
	if s == nil || s.cfg.Runtime == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := s.cfg.Runtime.ListContainers(ctx, runtime.ListFilter{Node: s.nodeName()})
	if err != nil {
		s.log.WithError(err).Debug("metrics: list containers")
		return
	}
	pods := 0
	states := map[runtime.State]float64{
		runtime.StateRunning: 0, runtime.StateExited: 0, runtime.StateCreated: 0, runtime.StateUnknown: 0,
	}
	for _, ct := range list {
		if ct.Meta.Kind == runtime.KindSandbox {
			if ct.State == runtime.StateRunning {
				pods++
			}
			continue
		}
		states[ct.State]++
	}
	ch <- prometheus.MustNewConstMetric(runningPodsDesc, prometheus.GaugeValue, float64(pods))
	for st, n := range states {
		ch <- prometheus.MustNewConstMetric(runningContainersDesc, prometheus.GaugeValue, n, string(st))
	}
}
