package cache

import (
	"sort"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
)

// watchBuffer is how many events a watcher may fall behind before it is
// closed (the client then re-watches from its last resourceVersion).
const watchBuffer = historySize + 1024

// Watcher receives a resource's events after a revision.
type Watcher struct {
	res  *Resource
	from int64
	// ch carries the events; it is closed by the resource (under res.mu)
	// when the watcher falls behind or is stopped.
	ch     chan Event
	closed bool // guarded by res.mu
	once   sync.Once
}

// Events returns the watcher's channel; it is closed when the watcher
// stops or falls too far behind.
func (w *Watcher) Events() <-chan Event { return w.ch }

// offer delivers ev without blocking; it reports false (and closes the
// watcher) when the watcher is full. res.mu is held.
func (w *Watcher) offer(ev Event) bool {
	if ev.Revision <= w.from {
		return true
	}
	select {
	case w.ch <- ev:
		return true
	default:
		w.closed = true
		close(w.ch)
		return false
	}
}

// Stop unregisters the watcher and closes its channel.
func (w *Watcher) Stop() {
	w.once.Do(func() {
		w.res.mu.Lock()
		defer w.res.mu.Unlock()
		delete(w.res.watches, w)
		if !w.closed {
			w.closed = true
			close(w.ch)
		}
	})
}

// Bookmark returns the revision a bookmark may carry: the cache's revision
// when every event up to it has been taken from the channel.
func (w *Watcher) Bookmark() (int64, bool) {
	w.res.mu.RLock()
	defer w.res.mu.RUnlock()
	if len(w.ch) > 0 || w.closed {
		return 0, false
	}
	return w.res.rev, true
}

// Watch returns a watcher of the events after revision from (0: from now).
// It returns ErrTooOld when from predates the cache's history.
func (r *Resource) Watch(from int64) (*Watcher, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if from == 0 {
		from = r.rev
	}
	if from < r.histLow {
		return nil, ErrTooOld
	}
	w := &Watcher{res: r, from: from, ch: make(chan Event, watchBuffer)}
	i := sort.Search(len(r.history), func(i int) bool { return r.history[i].Revision > from })
	for _, ev := range r.history[i:] {
		w.ch <- ev
	}
	r.watches[w] = struct{}{}
	return w, nil
}

// ListAndWatch returns the current objects (as List does), their revision,
// and a watcher of every later event, atomically.
func (r *Resource) ListAndWatch(name, value string) ([]runtime.Object, int64, *Watcher) {
	r.mu.Lock()
	defer r.mu.Unlock()
	objs := r.listLocked(name, value)
	w := &Watcher{res: r, from: r.rev, ch: make(chan Event, watchBuffer)}
	r.watches[w] = struct{}{}
	return objs, r.rev, w
}
