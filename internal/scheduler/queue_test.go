package scheduler

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestQueueOrdersByPriorityThenAge(t *testing.T) {
	q := newSchedulingQueue(time.Now)
	prio := func(v int32) func(*corev1.Pod) { return func(p *corev1.Pod) { p.Spec.Priority = &v } }
	q.add("default/old", makePod("old", "", ""))
	q.add("default/new", makePod("new", "", ""))
	q.add("default/high", makePod("high", "", "", prio(1000)))
	got := q.pop(10)
	want := []string{"default/high", "default/old", "default/new"}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("popped %v, want %v", got, want)
	}
}

func TestQueueBacksOffUnschedulablePods(t *testing.T) {
	now := time.Unix(1000, 0)
	q := newSchedulingQueue(func() time.Time { return now })
	pod := makePod("p", "", "")
	q.add("default/p", pod)
	state := func() queueState { return q.pods["default/p"].state }
	for attempt, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second} {
		if got := q.pop(1); len(got) != 1 {
			t.Fatalf("attempt %d: nothing active", attempt)
		}
		q.failed("default/p", true)
		if state() != stateUnschedulable {
			t.Fatalf("attempt %d: state %v, want unschedulable", attempt, state())
		}
		// A status-only update does not move it; a cluster event does,
		// but only once the back-off is over.
		up := pod.DeepCopy()
		up.Status.Phase = corev1.PodPending
		q.add("default/p", up)
		if state() != stateUnschedulable {
			t.Fatalf("status update moved the pod")
		}
		q.moveAll()
		now = now.Add(wait - time.Millisecond)
		q.flush()
		if state() != stateBackoff {
			t.Fatalf("attempt %d: state %v before %v, want backoff", attempt, state(), wait)
		}
		now = now.Add(time.Millisecond)
		q.flush()
		if state() != stateActive {
			t.Fatalf("attempt %d: state %v after %v, want active", attempt, state(), wait)
		}
	}
}

func TestQueueRetriesUnschedulablePodAfterTimeout(t *testing.T) {
	now := time.Unix(1000, 0)
	q := newSchedulingQueue(func() time.Time { return now })
	q.add("default/p", makePod("p", "", ""))
	q.pop(1)
	q.failed("default/p", true)
	now = now.Add(unschedulableTimeout - time.Second)
	q.flush()
	if q.pods["default/p"].state != stateUnschedulable {
		t.Fatal("moved before the timeout")
	}
	now = now.Add(time.Second)
	q.flush()
	if q.pods["default/p"].state != stateActive {
		t.Fatal("not retried after the timeout")
	}
}

func TestQueueEventDuringCycleBacksOffInsteadOfParking(t *testing.T) {
	q := newSchedulingQueue(time.Now)
	q.add("default/p", makePod("p", "", ""))
	q.pop(1)
	q.moveAll() // a node was added while the pod was being scheduled
	q.failed("default/p", true)
	if q.pods["default/p"].state != stateBackoff {
		t.Fatalf("state %v, want backoff", q.pods["default/p"].state)
	}
}

func TestPendingSelectsThisSchedulersUnboundPods(t *testing.T) {
	now := metav1.Now()
	tests := []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{"unbound", makePod("p", "", ""), true},
		{"no scheduler name", makePod("p", "", "", func(p *corev1.Pod) { p.Spec.SchedulerName = "" }), true},
		{"bound", makePod("p", "", "", onNode("n1")), false},
		{"other scheduler", makePod("p", "", "", func(p *corev1.Pod) { p.Spec.SchedulerName = "other" }), false},
		{"deleting", makePod("p", "", "", func(p *corev1.Pod) { p.DeletionTimestamp = &now }), false},
		{"failed", makePod("p", "", "", func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }), false},
		{"gated", makePod("p", "", "", func(p *corev1.Pod) { p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "g"}} }), false},
	}
	for _, tc := range tests {
		if got := pending(tc.pod); got != tc.want {
			t.Errorf("%s: pending = %v, want %v", tc.name, got, tc.want)
		}
	}
}
