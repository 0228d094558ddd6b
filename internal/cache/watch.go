package cache

import (
	"sort"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
)

// watchBuffer is how many events a watcher may fall behind (besides the
// history it starts with) before it is closed; the client then re-watches
// from its last resourceVersion.
const watchBuffer = 256

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
	replay := r.history.after(from)
	w := &Watcher{res: r, from: from, ch: make(chan Event, len(replay)+watchBuffer)}
	for _, ev := range replay {
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

// ring holds the last historySize events in order.
type ring struct {
	buf  []Event
	head int // index of the oldest event once buf is full
}

// push appends ev, returning the event it pushed out, if any.
func (r *ring) push(ev Event) (Event, bool) {
	if len(r.buf) < historySize {
		r.buf = append(r.buf, ev)
		return Event{}, false
	}
	dropped := r.buf[r.head]
	r.buf[r.head] = ev
	r.head = (r.head + 1) % historySize
	return dropped, true
}

// at returns the i-th oldest event.
func (r *ring) at(i int) Event { return r.buf[(r.head+i)%len(r.buf)] }

// after returns, oldest first, the events with a revision above rev.
func (r *ring) after(rev int64) []Event {
	n := len(r.buf)
	i := sort.Search(n, func(i int) bool { return r.at(i).Revision > rev })
	out := make([]Event, 0, n-i)
	for ; i < n; i++ {
		out = append(out, r.at(i))
	}
	return out
}
