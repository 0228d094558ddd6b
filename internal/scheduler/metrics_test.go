package scheduler

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/controller"
	"github.com/mizzen-dev/mizzen/internal/controller/controllertest"
)

// attempts returns scheduler_schedule_attempts_total and the sample count
// of scheduler_scheduling_attempt_duration_seconds of a result.
func attempts(t *testing.T, g prometheus.Gatherer, result string) (count, observed float64) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["result"] != result || labels["profile"] != "default-scheduler" {
				continue
			}
			switch mf.GetName() {
			case "scheduler_schedule_attempts_total":
				count = m.GetCounter().GetValue()
			case "scheduler_scheduling_attempt_duration_seconds":
				observed = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return count, observed
}

func TestSchedulerCountsAttemptsByResult(t *testing.T) {
	res := controller.MemoryResources{}
	for _, gr := range []schema.GroupResource{podsGR, nodesGR, {Resource: "events"}} {
		res.Resource(gr)
	}
	log := logrus.New()
	log.SetOutput(t.Output())
	reg := prometheus.NewRegistry()
	env := controller.Env{Resources: res, Client: controllertest.New(res), Metrics: reg, Log: logrus.NewEntry(log)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = New(env).Run(ctx) }()
	defer func() { cancel(); <-done }()
	// A second scheduler (built when leadership is won again) shares the
	// registered metrics.
	_ = New(env)

	res.Resource(nodesGR).Put(makeNode("n1", "1", "4Gi", 110))
	res.Resource(podsGR).Put(makePod("fits", "600m", ""))
	res.Resource(podsGR).Put(makePod("too-big", "2", ""))
	eventually(t, func() error {
		if n, d := attempts(t, reg, "scheduled"); n != 1 || d != 1 {
			return fmt.Errorf("scheduled: %v attempts, %v durations; want 1", n, d)
		}
		if n, d := attempts(t, reg, "unschedulable"); n < 1 || d != n {
			return fmt.Errorf("unschedulable: %v attempts, %v durations; want as many, at least 1", n, d)
		}
		return nil
	})
	if n, _ := attempts(t, reg, "error"); n != 0 {
		t.Errorf("%v attempts ended in error", n)
	}
}
