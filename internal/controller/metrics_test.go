package controller

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
)

// metricValue returns a gathered counter's or gauge's value, or a
// histogram's sample count, of the series of name with labels; -1 when
// there is none.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return -1
}

func TestEnvQueueExportsWorkqueueMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	env := Env{Metrics: reg}
	q := env.NewQueue("test")
	// A second queue of the same name (a controller rebuilt after a
	// leadership change) shares the registered metrics.
	_ = env.NewQueue("test")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q.Add("a")
	q.Add("b")
	name := map[string]string{"name": "test"}
	if got := metricValue(t, reg, "workqueue_depth", name); got != 2 {
		t.Errorf("workqueue_depth = %v, want 2", got)
	}
	synced := make(chan string, 4)
	failed := false
	go Run(ctx, q, 1, logrus.NewEntry(logrus.New()), func(_ context.Context, key string) error {
		if key == "a" && !failed {
			failed = true
			return errors.New("retry me")
		}
		synced <- key
		return nil
	})
	for range 2 {
		select {
		case <-synced:
		case <-ctx.Done():
			t.Fatal("keys not synced")
		}
	}
	// The last sync's work duration is observed when it is done, just
	// after it sent its key.
	for metricValue(t, reg, "workqueue_work_duration_seconds", name) != 3 {
		if ctx.Err() != nil {
			t.Fatalf("workqueue_work_duration_seconds has %v samples, want 3", metricValue(t, reg, "workqueue_work_duration_seconds", name))
		}
		time.Sleep(time.Millisecond)
	}
	for metric, want := range map[string]float64{
		"workqueue_adds_total": 3, "workqueue_retries_total": 1, "workqueue_depth": 0,
	} {
		if got := metricValue(t, reg, metric, name); got != want {
			t.Errorf("%s = %v, want %v", metric, got, want)
		}
	}
}

func TestRegisterReturnsTheCollectorAlreadyRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "x_total", Help: "x"}
	first := Register(reg, prometheus.NewCounter(opts))
	second := Register(reg, prometheus.NewCounter(opts))
	second.Inc()
	if second != first || metricValue(t, reg, "x_total", nil) != 1 {
		t.Error("the second Register did not return the first counter")
	}
}
