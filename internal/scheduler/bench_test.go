package scheduler

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"context"

	"github.com/sirupsen/logrus"

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

// BenchmarkCycleOf1PodIn5000PodCluster is one scheduling cycle of a
// single pod (a snapshot of 500 nodes and 5,000 bound pods, filters and
// scores): the cost per pod when pods arrive one at a time.
func BenchmarkCycleOf1PodIn5000PodCluster(b *testing.B) {
	res := controller.MemoryResources{}
	for n := 0; n < 500; n++ {
		res.Resource(nodesGR).Put(makeNode(fmt.Sprintf("node-%03d", n), "32", "128Gi", 110))
	}
	for p := 0; p < 5000; p++ {
		res.Resource(podsGR).Put(makePod(fmt.Sprintf("bound-%05d", p), "100m", "128Mi", onNode(fmt.Sprintf("node-%03d", p%500))))
	}
	s := New(controller.Env{Resources: res, Client: controllertest.New(res), Log: logrus.NewEntry(logrus.New())})
	pod := makePod("p", "100m", "128Mi")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, fe := s.schedulePod(s.snapshot(), pod); fe != nil {
			b.Fatal(fe)
		}
	}
}
