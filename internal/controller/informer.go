package controller

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/mizzen-dev/mizzen/internal/cache"
)

// Handler receives a resource's objects and changes. Any func may be nil.
// Objects are shared with the cache: handlers must not modify them (they
// should only enqueue keys).
type Handler struct {
	Add    func(obj runtime.Object)
	Update func(old, obj runtime.Object)
	Delete func(obj runtime.Object)
}

// Source is what Watch reads: a cache resource (or a memory one in tests).
type Source interface {
	ListAndWatch(index, value string) ([]runtime.Object, int64, *cache.Watcher)
}

// Watch calls h.Add for every current object of src, then h for every
// change, until ctx is done. When the cache drops a watcher that fell
// behind, Watch lists again and reports the difference from what it had
// seen: Add for new objects, Update for changed ones, Delete for gone ones.
func Watch(ctx context.Context, src Source, h Handler) {
	known := map[string]runtime.Object{}
	for ctx.Err() == nil {
		objs, _, w := src.ListAndWatch("", "")
		fresh := make(map[string]runtime.Object, len(objs))
		for _, o := range objs {
			k := Key(o)
			fresh[k] = o
			old, seen := known[k]
			switch {
			case !seen:
				if h.Add != nil {
					h.Add(o)
				}
			case resourceVersion(old) != resourceVersion(o):
				if h.Update != nil {
					h.Update(old, o)
				}
			}
		}
		for k, old := range known {
			if _, ok := fresh[k]; !ok && h.Delete != nil {
				h.Delete(old)
			}
		}
		known = fresh
		follow(ctx, w, h, known)
		w.Stop()
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func resourceVersion(o runtime.Object) string {
	m, err := meta.Accessor(o)
	if err != nil {
		return ""
	}
	return m.GetResourceVersion()
}

// follow delivers w's events to h, keeping known current.
func follow(ctx context.Context, w *cache.Watcher, h Handler, known map[string]runtime.Object) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events():
			if !ok {
				return
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				known[Key(ev.Object)] = ev.Object
			case watch.Deleted:
				delete(known, Key(ev.Object))
			}
			switch ev.Type {
			case watch.Added:
				if h.Add != nil {
					h.Add(ev.Object)
				}
			case watch.Modified:
				if h.Update != nil {
					h.Update(ev.Prev, ev.Object)
				}
			case watch.Deleted:
				if h.Delete != nil {
					h.Delete(ev.Object)
				}
			}
		}
	}
}

// EnqueueHandler returns a Handler that adds the key of every object it
// sees to q.
func EnqueueHandler(q Queue) Handler {
	add := func(obj runtime.Object) { q.Add(Key(obj)) }
	return Handler{Add: add, Update: func(_, obj runtime.Object) { add(obj) }, Delete: add}
}
