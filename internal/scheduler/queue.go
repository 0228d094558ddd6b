package scheduler

import (
	"container/heap"
	"context"
	"reflect"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Back-off of a pod that could not be scheduled: 1 s doubling to 10 s, as
// kube-scheduler's defaults; an unschedulable pod that no cluster event
// moved is retried after unschedulableTimeout anyway.
const (
	initialBackoff       = time.Second
	maxBackoff           = 10 * time.Second
	unschedulableTimeout = time.Minute
)

// queuedPod is a pending pod the queue knows.
type queuedPod struct {
	key      string
	priority int32
	created  time.Time
	pod      *corev1.Pod // last seen, to tell spec changes from status ones
	attempts int
	// backoffUntil is when the pod may be tried again; since, when it
	// became unschedulable.
	backoffUntil, since time.Time
	// cycle is the move count when the pod was popped.
	cycle int64
	index int // in the active heap, -1 when not there
	state queueState
}

type queueState int

const (
	stateActive queueState = iota
	stateBackoff
	stateUnschedulable
	stateInFlight
)

// schedulingQueue holds pending pods: active ones ordered by priority then
// age, those backing off after a failure, unschedulable ones waiting for a
// cluster event, and those being scheduled.
type schedulingQueue struct {
	now func() time.Time

	// mu guards everything below; cond is signalled when a pod becomes
	// active or the queue closes.
	mu     sync.Mutex
	cond   *sync.Cond
	pods   map[string]*queuedPod
	active activeHeap
	moves  int64 // count of cluster events that may help unschedulable pods
	closed bool

	// waiting is signalled (without blocking) when a pod starts waiting
	// for its back-off or for a cluster event, so run recomputes its timer.
	waiting chan struct{}
}

func newSchedulingQueue(now func() time.Time) *schedulingQueue {
	q := &schedulingQueue{now: now, pods: map[string]*queuedPod{}, waiting: make(chan struct{}, 1)}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func podPriority(pod *corev1.Pod) int32 {
	if pod.Spec.Priority != nil {
		return *pod.Spec.Priority
	}
	return 0
}

// add adds a pending pod, or notes an update of one it knows: a changed
// spec or labels may make an unschedulable pod schedulable.
func (q *schedulingQueue) add(key string, pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	qp, ok := q.pods[key]
	if !ok {
		qp = &queuedPod{key: key, priority: podPriority(pod), created: pod.CreationTimestamp.Time, pod: pod, index: -1}
		q.pods[key] = qp
		q.activate(qp)
		return
	}
	changed := !reflect.DeepEqual(qp.pod.Spec, pod.Spec) || !reflect.DeepEqual(qp.pod.Labels, pod.Labels)
	qp.pod = pod
	if qp.state == stateActive && qp.priority != podPriority(pod) {
		qp.priority = podPriority(pod)
		heap.Fix(&q.active, qp.index)
	}
	if changed && qp.state == stateUnschedulable {
		q.requeue(qp)
	}
}

// remove forgets a pod (bound, deleted, or no longer pending).
func (q *schedulingQueue) remove(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	qp, ok := q.pods[key]
	if !ok {
		return
	}
	if qp.index >= 0 {
		heap.Remove(&q.active, qp.index)
	}
	delete(q.pods, key)
}

// moveAll is a cluster event that may make unschedulable pods fit: they
// go back to the active queue once their back-off has passed.
func (q *schedulingQueue) moveAll() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.moves++
	for _, qp := range q.pods {
		if qp.state == stateUnschedulable {
			q.requeue(qp)
		}
	}
}

// requeue puts a pod back to active, or to back-off if it must wait.
func (q *schedulingQueue) requeue(qp *queuedPod) {
	if q.now().Before(qp.backoffUntil) {
		qp.state = stateBackoff
		q.wake()
		return
	}
	q.activate(qp)
}

func (q *schedulingQueue) activate(qp *queuedPod) {
	qp.state = stateActive
	heap.Push(&q.active, qp)
	q.cond.Signal()
}

// pop waits for an active pod, then takes up to max of them, highest
// priority first. It returns nil once the queue is closed.
func (q *schedulingQueue) pop(max int) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.active) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return nil
	}
	var out []string
	for len(q.active) > 0 && len(out) < max {
		qp := heap.Pop(&q.active).(*queuedPod)
		qp.state = stateInFlight
		qp.cycle = q.moves
		out = append(out, qp.key)
	}
	return out
}

// done forgets a pod that was scheduled (or that vanished).
func (q *schedulingQueue) done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if qp, ok := q.pods[key]; ok && qp.state == stateInFlight {
		delete(q.pods, key)
	}
}

// failed puts back a pod that could not be scheduled, with back-off. An
// unschedulable pod waits for a cluster event, unless one came while it
// was being scheduled; other failures (errors) only back off.
func (q *schedulingQueue) failed(key string, unschedulable bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	qp, ok := q.pods[key]
	if !ok || qp.state != stateInFlight {
		return
	}
	qp.attempts++
	d := initialBackoff
	for i := 1; i < qp.attempts && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	now := q.now()
	qp.backoffUntil = now.Add(d)
	qp.since = now
	q.wake()
	if unschedulable && qp.cycle == q.moves {
		qp.state = stateUnschedulable
		return
	}
	qp.state = stateBackoff
}

// flush activates pods whose back-off is over and unschedulable pods
// that waited unschedulableTimeout, and returns when it next has work
// (zero when no pod waits).
func (q *schedulingQueue) flush() time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	var next time.Time
	later := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, qp := range q.pods {
		switch qp.state {
		case stateBackoff:
			if now.Before(qp.backoffUntil) {
				later(qp.backoffUntil)
			} else {
				q.activate(qp)
			}
		case stateUnschedulable:
			if at := qp.since.Add(unschedulableTimeout); now.Before(at) {
				later(at)
			} else {
				q.requeue(qp)
				if qp.state == stateBackoff {
					later(qp.backoffUntil)
				}
			}
		}
	}
	return next
}

// wake tells run that a pod started waiting; q.mu is held.
func (q *schedulingQueue) wake() {
	select {
	case q.waiting <- struct{}{}:
	default:
	}
}

// run flushes when a waiting pod is due (sleeping while none waits, so
// an idle scheduler does not wake up) and closes the queue when ctx is
// done.
func (q *schedulingQueue) run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			q.mu.Lock()
			q.closed = true
			q.cond.Broadcast()
			q.mu.Unlock()
			return
		case <-t.C:
		case <-q.waiting:
		}
		next := q.flush()
		t.Stop()
		if !next.IsZero() {
			// A little late rather than early, so the pod is due then.
			t.Reset(next.Sub(q.now()) + time.Millisecond)
		}
	}
}

// activeHeap orders pods by priority (highest first), then creation.
type activeHeap []*queuedPod

func (h activeHeap) Len() int { return len(h) }
func (h activeHeap) Less(i, j int) bool {
	if h[i].priority != h[j].priority {
		return h[i].priority > h[j].priority
	}
	if !h[i].created.Equal(h[j].created) {
		return h[i].created.Before(h[j].created)
	}
	return h[i].key < h[j].key
}
func (h activeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *activeHeap) Push(x any) {
	qp := x.(*queuedPod)
	qp.index = len(*h)
	*h = append(*h, qp)
}
func (h *activeHeap) Pop() any {
	old := *h
	qp := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	qp.index = -1
	return qp
}
