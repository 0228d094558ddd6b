package replicaset

import (
	"sync"
	"time"
)

// expectationsTimeout is how long a controller waits for the cache to
// show the creations and deletions it made before it stops trusting the
// record and syncs anyway (Kubernetes' ExpectationsTimeout).
const expectationsTimeout = 5 * time.Minute

// expectations records, per ReplicaSet key, the pod creations and
// deletions a sync made that the cache has not shown yet, so that the next
// sync does not repeat them (Kubernetes' UIDTrackingControllerExpectations).
// It is rebuilt empty on restart: an empty record means "in sync".
type expectations struct {
	now func() time.Time

	mu sync.Mutex // guards m
	m  map[string]*expectation
}

type expectation struct {
	adds      int
	deletes   map[string]bool // pod keys still expected to go
	timestamp time.Time
}

func newExpectations(now func() time.Time) *expectations {
	return &expectations{now: now, m: map[string]*expectation{}}
}

// satisfied reports whether key's controller may act: nothing is pending,
// or the record is older than expectationsTimeout.
func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok {
		return true
	}
	if x.adds <= 0 && len(x.deletes) == 0 {
		return true
	}
	return e.now().Sub(x.timestamp) > expectationsTimeout
}

// expectCreations replaces key's record with n pending creations.
func (e *expectations) expectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &expectation{adds: n, deletes: map[string]bool{}, timestamp: e.now()}
}

// expectDeletions replaces key's record with the pods expected to go.
func (e *expectations) expectDeletions(key string, pods []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &expectation{deletes: map[string]bool{}, timestamp: e.now()}
	for _, p := range pods {
		x.deletes[p] = true
	}
	e.m[key] = x
}

// creationObserved lowers key's pending creations by one.
func (e *expectations) creationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok && x.adds > 0 {
		x.adds--
	}
}

// deletionObserved marks pod as gone for key; a pod observed twice (first
// terminating, then deleted) counts once.
func (e *expectations) deletionObserved(key, pod string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		delete(x.deletes, pod)
	}
}

// forget drops key's record (its ReplicaSet is gone).
func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
