package scheduler

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mizzen-dev/mizzen/internal/controller"
)

// The results of a scheduling attempt, as kube-scheduler labels them.
const (
	resultScheduled     = "scheduled"
	resultUnschedulable = "unschedulable"
	resultError         = "error"
)

// metrics are kube-scheduler's attempt metrics, for its one profile.
type metrics struct {
	attempts *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newMetrics registers the scheduler's metrics in reg (or finds them
// there); a nil reg keeps them unregistered.
func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	labels := []string{"result", "profile"}
	return &metrics{
		attempts: controller.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "scheduler", Name: "schedule_attempts_total",
			Help: "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem.",
		}, labels)),
		duration: controller.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: "scheduler", Name: "scheduling_attempt_duration_seconds",
			Help:    "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, labels)),
	}
}

// attempt records one scheduling attempt that started at start.
func (m *metrics) attempt(result string, start time.Time) {
	m.attempts.WithLabelValues(result, Name).Inc()
	m.duration.WithLabelValues(result, Name).Observe(time.Since(start).Seconds())
}
