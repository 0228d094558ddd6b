package nodestatus

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/mizzen-dev/mizzen/internal/runtime/fake"
)

// run is an Agent on the real clock, for tests inside a synctest bubble.
type run struct {
	client *fakeClient
	host   *fakeHost
	rt     *downRuntime
	events *events
	agent  *Agent
	cancel context.CancelFunc
	done   chan error // receives Run's result
}

func startRun(t *testing.T, mod func(*Config)) *run {
	t.Helper()
	r := &run{client: newFakeClient(), host: newFakeHost(), rt: &downRuntime{Runtime: fake.New()}, events: &events{}, done: make(chan error, 1)}
	cfg := Config{
		NodeName: "n1", Runtime: r.rt, Client: r.client, Event: r.events.record, Host: r.host, Log: testLog(t),
	}
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r.agent = a
	return r
}

func (r *run) start(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	r.cancel = cancel
	go func() { r.done <- r.agent.Run(ctx) }()
}

func (r *run) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
}

func TestRunRegistersWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRun(t, nil)
		r.client.failNext("Create", "Node", errors.New("connection refused"), errors.New("connection refused"), errors.New("connection refused"))
		start := time.Now()
		r.start(t)
		<-r.agent.Registered()
		if got, want := time.Since(start), 700*time.Millisecond; got != want {
			t.Errorf("registered after %v, want %v (100, 200, 400 ms back-off)", got, want)
		}
		if r.agent.Node() == nil {
			t.Error("Node() = nil after Registered")
		}
		r.stop(t)
	})
}

func TestRunStopsWhileRegistering(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRun(t, nil)
		for range 100 {
			r.client.failNext("Create", "Node", apierrors.NewServiceUnavailable("starting"))
		}
		r.start(t)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		select {
		case <-r.agent.Registered():
			t.Fatal("registered although every create failed")
		default:
		}
		if r.agent.Node() != nil {
			t.Error("Node() != nil before registration")
		}
		r.stop(t)
	})
}

func TestRunReportsAndRenewsOnSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRun(t, nil)
		r.start(t)
		<-r.agent.Registered()
		start := time.Now()
		synctest.Wait()
		count := func(method, kind string) int { return len(r.client.callsOf(method, kind)) }
		if count("Create", "Lease") != 1 || count("Patch", "Node") != 0 {
			t.Fatalf("at start: %d lease creates, %d status patches; want 1, 0", count("Create", "Lease"), count("Patch", "Node"))
		}

		time.Sleep(5*time.Minute - 10*time.Second)
		synctest.Wait()
		if got := count("Update", "Lease"); got != 29 {
			t.Errorf("lease renewals in 4m50s = %d, want 29", got)
		}
		if got := count("Get", "Node"); got != 30 {
			t.Errorf("status syncs in 4m50s = %d, want 30", got)
		}
		if got := count("Patch", "Node"); got != 0 {
			t.Errorf("status patches of an unchanged node = %d, want 0", got)
		}

		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := count("Patch", "Node"); got != 1 {
			t.Fatalf("status patches after 5 min = %d, want 1", got)
		}
		ready := findCondition(r.client.node(t, "n1").Status.Conditions, corev1.NodeReady)
		if !ready.LastHeartbeatTime.Time.Equal(start.Add(5 * time.Minute).Truncate(time.Second)) {
			t.Errorf("heartbeat = %v, want %v", ready.LastHeartbeatTime, start.Add(5*time.Minute))
		}
		r.stop(t)
	})
}

func TestKickRecomputesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRun(t, nil)
		r.start(t)
		<-r.agent.Registered()
		synctest.Wait()
		syncs := len(r.client.callsOf("Get", "Node"))

		r.rt.setDown(errors.New("docker version: connection refused"))
		r.agent.Kick()
		synctest.Wait()
		if got := len(r.client.callsOf("Get", "Node")); got != syncs+1 {
			t.Errorf("status syncs after Kick = %d, want %d", got, syncs+1)
		}
		if got := len(r.client.callsOf("Patch", "Node")); got != 1 {
			t.Fatalf("status patches after Kick = %d, want 1", got)
		}
		if ready := findCondition(r.agent.Node().Status.Conditions, corev1.NodeReady); ready.Status != corev1.ConditionFalse {
			t.Errorf("Node() Ready = %+v, want False", ready)
		}
		r.stop(t)
	})
}
