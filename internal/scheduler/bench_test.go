package scheduler

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/mizzen-dev/mizzen/internal/controller"
	"github.com/mizzen-dev/mizzen/internal/controller/controllertest"
)

// countingClient closes all when want pods are bound.
type countingClient struct {
	*controllertest.Fake
	bound *atomic.Int64
	want  int64
	all   chan struct{}
}

func (c *countingClient) Bind(ctx context.Context, pod *corev1.Pod, node string) error {
	err := c.Fake.Bind(ctx, pod, node)
	if err == nil && c.bound.Add(1) == c.want {
		close(c.all)
	}
	return err
}

// BenchmarkSchedule5000PodsOn500Nodes runs the whole loop in process
// (queue, snapshots, filters, scores, bindings and events through the
// fake client) and reports pods/s.
func BenchmarkSchedule5000PodsOn500Nodes(b *testing.B) {
	const nodes, pods = 500, 5000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		var bound atomic.Int64
		all := make(chan struct{})
		h := startScheduler(b, func(f *controllertest.Fake) controller.Client {
			return &countingClient{Fake: f, bound: &bound, want: pods, all: all}
		})
		for n := 0; n < nodes; n++ {
			h.res.Resource(nodesGR).Put(makeNode(fmt.Sprintf("node-%03d", n), "32", "128Gi", 110))
		}
		objs := make([]*corev1.Pod, pods)
		for p := range objs {
			objs[p] = makePod(fmt.Sprintf("p-%05d", p), "100m", "128Mi")
		}
		b.StartTimer()
		start := time.Now()
		for _, p := range objs {
			h.res.Resource(podsGR).Put(p)
		}
		select {
		case <-all:
		case <-time.After(time.Minute):
			b.Fatalf("only %d of %d pods bound", bound.Load(), pods)
		}
		b.ReportMetric(float64(pods)/time.Since(start).Seconds(), "pods/s")
		b.StopTimer()
		h.stop()
	}
}
