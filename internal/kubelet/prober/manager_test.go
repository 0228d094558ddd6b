package prober

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const uid = types.UID("uid-1")

// advance lets d of fake time pass in the bubble and waits until every
// worker is blocked again.
func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

type status struct{ started, ready, live bool }

func statusOf(m *Manager, id string) status {
	s, r, l := m.Status(uid, id)
	return status{s, r, l}
}

func TestReadinessWaitsInitialDelayThenFollowsThresholds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t)
		defer n.close()
		s := newScript(n.rt)
		var rec recorder
		m := NewManager(rec.config(n.rt))
		defer m.Stop()
		id := n.run(0)
		pod := testPod(nil, nil, execProbe("ready", 5, 10, 2, 2))
		m.Sync(uid, []Target{{Pod: pod, Container: "app", ContainerID: id, StartedAt: time.Now()}})

		steps := []struct {
			at     time.Duration // since the start
			code   int           // the exit code from now on
			probes int
			want   status
		}{
			{at: 4 * time.Second, probes: 0, want: status{true, false, true}},
			{at: 6 * time.Second, probes: 1, want: status{true, false, true}}, // one success of two
			{at: 16 * time.Second, code: 1, probes: 2, want: status{true, true, true}},
			{at: 26 * time.Second, code: 1, probes: 3, want: status{true, true, true}}, // one failure of two
			{at: 36 * time.Second, probes: 4, want: status{true, false, true}},
		}
		start := time.Now()
		for _, st := range steps {
			advance(start.Add(st.at).Sub(time.Now()))
			if got := s.count("ready"); got != st.probes {
				t.Errorf("at %v: %d probes, want %d", st.at, got, st.probes)
			}
			if got := statusOf(m, id); got != st.want {
				t.Errorf("at %v: status %+v, want %+v", st.at, got, st.want)
			}
			s.set("ready", st.code)
		}
		events, changed := rec.snapshot()
		want := []string{
			"Warning Unhealthy Readiness probe failed: ready says 1",
			"Warning Unhealthy Readiness probe failed: ready says 1",
		}
		if !slices.Equal(events, want) {
			t.Errorf("events %q, want %q", events, want)
		}
		if changed != 2 {
			t.Errorf("Changed called %d times, want 2 (ready, then not ready)", changed)
		}
	})
}

func TestLivenessFailureMarksNotLiveAndStopsProbing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t)
		defer n.close()
		s := newScript(n.rt)
		s.set("live", 1)
		var rec recorder
		m := NewManager(rec.config(n.rt))
		defer m.Stop()
		id := n.run(0)
		pod := testPod(nil, execProbe("live", 0, 10, 0, 0), nil) // defaults: failureThreshold 3
		m.Sync(uid, []Target{{Pod: pod, Container: "app", ContainerID: id, StartedAt: time.Now()}})

		advance(15 * time.Second) // probes at 0 and 10
		if got := statusOf(m, id); !got.live {
			t.Errorf("live after 2 of 3 failures: %+v", got)
		}
		if failed, _ := m.LivenessFailure(uid, id); failed {
			t.Error("LivenessFailure after 2 of 3 failures")
		}
		advance(10 * time.Second)
		if got := statusOf(m, id); got != (status{true, true, false}) {
			t.Errorf("after 3 failures: %+v", got)
		}
		if failed, msg := m.LivenessFailure(uid, id); !failed || msg != "live says 1" {
			t.Errorf("LivenessFailure = %v, %q", failed, msg)
		}
		advance(100 * time.Second)
		if got := s.count("live"); got != 3 {
			t.Errorf("%d liveness probes, want 3 (none after the failure)", got)
		}
		events, changed := rec.snapshot()
		if len(events) != 3 || events[2] != "Warning Unhealthy Liveness probe failed: live says 1" || changed != 1 {
			t.Errorf("events %q, %d changes", events, changed)
		}
	})
}

func TestStartupProbeGatesLivenessAndReadiness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t)
		defer n.close()
		s := newScript(n.rt)
		s.set("startup", 1)
		var rec recorder
		m := NewManager(rec.config(n.rt))
		defer m.Stop()
		id := n.run(0)
		pod := testPod(execProbe("startup", 0, 1, 0, 30), execProbe("live", 0, 10, 0, 0), execProbe("ready", 0, 10, 0, 0))
		m.Sync(uid, []Target{{Pod: pod, Container: "app", ContainerID: id, StartedAt: time.Now()}})

		advance(2500 * time.Millisecond) // startup probes at 0, 1 and 2 fail
		if got := statusOf(m, id); got != (status{false, false, true}) {
			t.Errorf("before startup: %+v", got)
		}
		if l, r := s.count("live"), s.count("ready"); l != 0 || r != 0 {
			t.Errorf("liveness ran %d and readiness %d times before startup", l, r)
		}
		s.set("startup", 0)
		advance(time.Second) // startup succeeds at 3; the others run at once
		if got := statusOf(m, id); got != (status{true, true, true}) {
			t.Errorf("after startup: %+v", got)
		}
		if l, r := s.count("live"), s.count("ready"); l != 1 || r != 1 {
			t.Errorf("after startup liveness ran %d and readiness %d times, want 1 each", l, r)
		}
		advance(30 * time.Second)
		if got := s.count("startup"); got != 4 {
			t.Errorf("%d startup probes, want 4 (none after the success)", got)
		}
		if failed, _ := m.StartupFailure(uid, id); failed {
			t.Error("StartupFailure after success")
		}
	})
}

func TestStartupFailureIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t)
		defer n.close()
		s := newScript(n.rt)
		s.set("startup", 2)
		var rec recorder
		m := NewManager(rec.config(n.rt))
		defer m.Stop()
		id := n.run(0)
		pod := testPod(execProbe("startup", 0, 5, 0, 2), execProbe("live", 0, 5, 0, 0), nil)
		m.Sync(uid, []Target{{Pod: pod, Container: "app", ContainerID: id, StartedAt: time.Now()}})

		advance(60 * time.Second)
		if got := statusOf(m, id); got != (status{false, false, true}) {
			t.Errorf("status %+v", got)
		}
		if failed, msg := m.StartupFailure(uid, id); !failed || msg != "startup says 2" {
			t.Errorf("StartupFailure = %v, %q", failed, msg)
		}
		if st, l := s.count("startup"), s.count("live"); st != 2 || l != 0 {
			t.Errorf("startup ran %d times (want 2), liveness %d (want 0)", st, l)
		}
		events, _ := rec.snapshot()
		if len(events) != 2 || events[0] != "Warning Unhealthy Startup probe failed: startup says 2" {
			t.Errorf("events %q", events)
		}
	})
}

func TestNewContainerIDStartsFromInitialState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t)
		defer n.close()
		s := newScript(n.rt)
		s.set("live", 1)
		var rec recorder
		m := NewManager(rec.config(n.rt))
		defer m.Stop()
		first := n.run(0)
		pod := testPod(nil, execProbe("live", 0, 10, 0, 1), execProbe("ready", 0, 10, 0, 0))
		m.Sync(uid, []Target{{Pod: pod, Container: "app", ContainerID: first, StartedAt: time.Now()}})
		advance(time.Second)
		if got := statusOf(m, first); got != (status{true, true, false}) {
			t.Fatalf("first instance: %+v", got)
		}

		s.set("live", 0)
		s.set("ready", 1)
		second := n.run(1)
		m.Sync(uid, []Target{{Pod: pod, Container: "app", ContainerID: second, StartedAt: time.Now()}})
		if got := statusOf(m, second); got.ready || !got.live {
			t.Errorf("second instance before probing: %+v, want not ready and live", got)
		}
		advance(time.Second)
		if got := statusOf(m, second); got != (status{true, false, true}) {
			t.Errorf("second instance: %+v", got)
		}
		if failed, _ := m.LivenessFailure(uid, second); failed {
			t.Error("the liveness failure of the first instance carried over")
		}
		if got := statusOf(m, first); got != (status{false, false, true}) {
			t.Errorf("first instance after Sync dropped it: %+v, want unknown", got)
		}
	})
}

func TestWorkersStopOnSyncWithoutTheContainerAndOnRemove(t *testing.T) {
	for _, tc := range []struct {
		name string
		drop func(m *Manager)
	}{
		{"Sync", func(m *Manager) { m.Sync(uid, nil) }},
		{"Remove", func(m *Manager) { m.Remove(uid) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := newNode(t)
				defer n.close()
				s := newScript(n.rt)
				var rec recorder
				m := NewManager(rec.config(n.rt))
				defer m.Stop()
				id := n.run(0)
				pod := testPod(nil, execProbe("live", 0, 10, 0, 0), execProbe("ready", 0, 10, 0, 0))
				m.Sync(uid, []Target{{Pod: pod, Container: "app", ContainerID: id, StartedAt: time.Now()}})
				advance(15 * time.Second)
				if l, r := s.count("live"), s.count("ready"); l != 2 || r != 2 {
					t.Fatalf("liveness ran %d and readiness %d times, want 2 each", l, r)
				}
				tc.drop(m)
				advance(time.Minute)
				if l, r := s.count("live"), s.count("ready"); l != 2 || r != 2 {
					t.Errorf("probes ran after the container went: liveness %d, readiness %d", l, r)
				}
				if got := statusOf(m, id); got != (status{false, false, true}) {
					t.Errorf("status of a dropped container: %+v", got)
				}
			})
		})
	}
}

func TestContainerWithoutProbesIsStartedAndReady(t *testing.T) {
	m := NewManager(Config{})
	defer m.Stop()
	m.Sync(uid, []Target{{Pod: testPod(nil, nil, nil), Container: "app", ContainerID: "c1", StartedAt: time.Now()}})
	if got := statusOf(m, "c1"); got != (status{true, true, true}) {
		t.Errorf("no probes: %+v", got)
	}
	if got := statusOf(m, "other"); got != (status{false, false, true}) {
		t.Errorf("unknown container: %+v", got)
	}
}

func TestDeletedPodStopsLivenessQuietly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t)
		defer n.close()
		s := newScript(n.rt)
		s.set("live", 1)
		var rec recorder
		m := NewManager(rec.config(n.rt))
		defer m.Stop()
		id := n.run(0)
		pod := testPod(nil, execProbe("live", 0, 10, 0, 2), nil)
		m.Sync(uid, []Target{{Pod: pod, Container: "app", ContainerID: id, StartedAt: time.Now()}})
		advance(5 * time.Second) // one failure of two

		deleted := pod.DeepCopy()
		deleted.DeletionTimestamp = &metav1.Time{Time: time.Now()}
		m.Sync(uid, []Target{{Pod: deleted, Container: "app", ContainerID: id, StartedAt: time.Now()}})
		advance(time.Minute)
		if got := statusOf(m, id); !got.live {
			t.Errorf("a deleted pod's container failed liveness: %+v", got)
		}
		if got := s.count("live"); got != 1 {
			t.Errorf("%d liveness probes, want 1 (none after the deletion)", got)
		}
	})
}

func TestErroredProbeIsNotCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t)
		defer n.close()
		var rec recorder
		m := NewManager(rec.config(n.rt))
		defer m.Stop()
		id := n.run(0)
		if err := n.rt.Exit(id, 0); err != nil { // exec now fails: not running
			t.Fatal(err)
		}
		pod := testPod(nil, execProbe("live", 0, 10, 0, 1), nil)
		m.Sync(uid, []Target{{Pod: pod, Container: "app", ContainerID: id, StartedAt: time.Now()}})
		advance(25 * time.Second)
		if got := statusOf(m, id); !got.live {
			t.Errorf("errored probes counted as failures: %+v", got)
		}
		events, _ := rec.snapshot()
		if len(events) != 3 {
			t.Fatalf("events %q, want one per period", events)
		}
		for _, e := range events {
			if want := "Warning Unhealthy Liveness probe errored: "; len(e) < len(want) || e[:len(want)] != want {
				t.Errorf("event %q", e)
			}
		}
	})
}

// The kubelet reads Status from its own goroutines while workers record.
func TestStatusIsSafeDuringProbing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t)
		defer n.close()
		newScript(n.rt)
		m := NewManager(Config{Runtime: n.rt})
		defer m.Stop()
		id := n.run(0)
		pod := testPod(nil, execProbe("live", 0, 1, 0, 0), execProbe("ready", 0, 1, 0, 0))
		for range 20 {
			m.Sync(uid, []Target{{Pod: pod.DeepCopy(), Container: "app", ContainerID: id, StartedAt: time.Now()}})
			_, _, _ = m.Status(uid, id)
			time.Sleep(500 * time.Millisecond)
		}
	})
}
