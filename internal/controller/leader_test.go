package controller_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/controller"
	"github.com/mizzen-dev/mizzen/internal/controller/controllertest"
)

func elector(res controller.MemoryResources, fake *controllertest.Fake, id string) *controller.Elector {
	return &controller.Elector{
		Name: "test-lease", Identity: id, Client: fake,
		Leases:        controller.Lister[*coordinationv1.Lease]{Res: res.Resource(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"})},
		LeaseDuration: time.Second, RenewDeadline: 500 * time.Millisecond, RetryPeriod: 20 * time.Millisecond,
		Log: logrus.NewEntry(logrus.New()),
	}
}

func TestOneLeaderAtATimeAndHandOverOnStop(t *testing.T) {
	res := controller.MemoryResources{}
	fake := controllertest.New(res)
	var leading atomic.Int32
	var overlap atomic.Bool
	lead := func(ctx context.Context) error {
		if leading.Add(1) > 1 {
			overlap.Store(true)
		}
		<-ctx.Done()
		leading.Add(-1)
		return nil
	}
	ctxA, stopA := context.WithCancel(context.Background())
	doneA := make(chan error)
	go func() { doneA <- elector(res, fake, "a").Run(ctxA, lead) }()
	deadline := time.Now().Add(5 * time.Second)
	for leading.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a never led")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	var bLed atomic.Bool
	go elector(res, fake, "b").Run(ctxB, func(ctx context.Context) error {
		bLed.Store(true)
		return lead(ctx)
	})
	time.Sleep(200 * time.Millisecond)
	if bLed.Load() {
		t.Fatal("b led while a held the lease")
	}
	stopA()
	<-doneA
	for !bLed.Load() {
		if time.Now().After(deadline) {
			t.Fatal("b never took over after a released the lease")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if overlap.Load() {
		t.Fatal("two leaders at once")
	}
}
