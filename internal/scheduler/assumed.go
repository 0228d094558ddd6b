package scheduler

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// assumedTTL is how long a bound pod is counted on its node while the
// cache does not show it bound (the watch normally does within
// milliseconds).
const assumedTTL = 30 * time.Second

// assumedPods are pods this scheduler placed whose binding the cache does
// not show yet: counted on their node so a burst does not over-commit.
type assumedPods struct {
	// mu guards pods.
	mu   sync.Mutex
	pods map[string]*assumedPod
}

type assumedPod struct {
	pod      *corev1.Pod // with spec.nodeName set
	deadline time.Time   // zero until bound
}

func newAssumedPods() *assumedPods { return &assumedPods{pods: map[string]*assumedPod{}} }

// add assumes pod (whose spec.nodeName is its node) while it is bound.
func (a *assumedPods) add(key string, pod *corev1.Pod, _ time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pods[key] = &assumedPod{pod: pod}
}

// bound starts the expiry of an assumed pod whose binding succeeded.
func (a *assumedPods) bound(key string, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p, ok := a.pods[key]; ok {
		p.deadline = now.Add(assumedTTL)
	}
}

func (a *assumedPods) has(key string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.pods[key]
	return ok
}

// confirm drops a pod the cache shows bound (or gone).
func (a *assumedPods) confirm(key string) { a.forget(key) }

// forget drops a pod and says whether it was assumed.
func (a *assumedPods) forget(key string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.pods[key]
	delete(a.pods, key)
	return ok
}

// list returns the assumed pods, dropping expired ones.
func (a *assumedPods) list(now time.Time) []*corev1.Pod {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(a.pods))
	for k, p := range a.pods {
		if !p.deadline.IsZero() && now.After(p.deadline) {
			delete(a.pods, k)
			continue
		}
		out = append(out, p.pod)
	}
	return out
}
