// Package cache is the shared in-memory informer cache: one etcd watch per
// resource keeps a decoded, indexed copy of every object. The API server
// serves list and watch from it, and controllers and the scheduler read it
// in-process. Objects handed out are shared: callers must not modify them.
package cache

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/mizzen-dev/mizzen/internal/storage"
)

// ErrTooOld is returned by Watch when the requested revision is older than
// the cache's history; the caller watches etcd directly instead.
var ErrTooOld = errors.New("revision older than the cache's history")

// Decoder turns a stored value into an object whose resourceVersion is the
// value's revision.
type Decoder func(kv storage.KV) (runtime.Object, error)

// IndexFunc returns the index values of an object.
type IndexFunc func(obj runtime.Object) []string

// Event is one change of a resource, in revision order.
type Event struct {
	Type watch.EventType
	// Object is the new object (the last state for Deleted).
	Object runtime.Object
	// Prev is the object before the change (nil for Added).
	Prev runtime.Object
	// Revision is the etcd revision of the change.
	Revision int64
}

// historySize is how many events each resource keeps for watches that
// start at a recent resourceVersion.
const historySize = 1024

// Resource caches one resource (all namespaces).
type Resource struct {
	name    string
	prefix  string
	store   *storage.Store
	decode  Decoder
	indexes map[string]IndexFunc
	log     *logrus.Entry

	// mu guards everything below.
	mu      sync.RWMutex
	objs    map[string]runtime.Object
	index   map[string]map[string]map[string]struct{} // index name → value → keys
	rev     int64                                     // consistent up to this revision
	revCh   chan struct{}                             // closed and replaced when rev grows
	history ring                                      // recent events
	histLow int64                                     // events after this revision are in history
	watches map[*Watcher]struct{}
	synced  bool
	syncCh  chan struct{} // closed once the first list is loaded
}

func newResource(name, prefix string, st *storage.Store, dec Decoder, idx map[string]IndexFunc, log *logrus.Entry) *Resource {
	all := map[string]IndexFunc{"namespace": namespaceIndex}
	for k, f := range idx {
		all[k] = f
	}
	return &Resource{
		name: name, prefix: prefix, store: st, decode: dec, indexes: all, log: log.WithField("resource", name),
		objs: map[string]runtime.Object{}, index: map[string]map[string]map[string]struct{}{},
		revCh: make(chan struct{}), watches: map[*Watcher]struct{}{}, syncCh: make(chan struct{}),
	}
}

func namespaceIndex(obj runtime.Object) []string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil
	}
	return []string{m.GetNamespace()}
}

// run lists and watches until ctx is done, relisting when the watch fails
// (with a growing pause when it fails again at once).
func (r *Resource) run(ctx context.Context) error {
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		rev, err := r.load(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.log.WithError(err).Warn("list failed; retrying")
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		started := time.Now()
		err = r.follow(ctx, rev)
		if ctx.Err() != nil {
			break
		}
		r.log.WithError(err).Info("watch ended; relisting")
		if time.Since(started) > time.Minute {
			pause = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		pause = min(2*pause, 10*time.Second)
	}
	return nil
}

// load replaces the cache's content with a fresh list and returns its
// revision. Watchers see the difference as events.
func (r *Resource) load(ctx context.Context) (int64, error) {
	res, err := r.store.List(ctx, r.prefix, storage.ListOptions{})
	if err != nil {
		return 0, err
	}
	fresh := make(map[string]runtime.Object, len(res.KVs))
	for _, kv := range res.KVs {
		obj, err := r.decode(kv)
		if err != nil {
			r.log.WithError(err).WithField("key", kv.Key).Warn("skipping undecodable object")
			continue
		}
		fresh[kv.Key] = obj
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.synced {
		for k, o := range fresh {
			r.objs[k] = o
			r.indexAdd(k, o)
		}
		r.histLow = res.Revision
		r.synced = true
		close(r.syncCh)
	} else {
		// A relist after a broken watch: emit what changed meanwhile.
		for k, old := range r.objs {
			if _, ok := fresh[k]; !ok {
				r.apply(Event{Type: watch.Deleted, Object: withRV(old, res.Revision), Prev: old, Revision: res.Revision}, k)
			}
		}
		for k, o := range fresh {
			old, ok := r.objs[k]
			switch {
			case !ok:
				r.apply(Event{Type: watch.Added, Object: o, Revision: res.Revision}, k)
			case rvOf(old) != rvOf(o):
				r.apply(Event{Type: watch.Modified, Object: o, Prev: old, Revision: res.Revision}, k)
			}
		}
	}
	r.setRev(res.Revision)
	return res.Revision, nil
}

// follow applies the watch from rev+1 until it fails.
func (r *Resource) follow(ctx context.Context, rev int64) error {
	for ev := range r.store.Watch(ctx, r.prefix, rev+1) {
		switch ev.Type {
		case storage.Error:
			return ev.Err
		case storage.Progress:
			r.mu.Lock()
			r.setRev(ev.Revision)
			r.mu.Unlock()
			continue
		}
		// Decode before taking the lock: readers wait only for the swap.
		var obj runtime.Object
		var err error
		if ev.Type == storage.Delete {
			if len(ev.Prev.Value) > 0 {
				obj, err = r.decode(ev.Prev)
			}
		} else {
			obj, err = r.decode(ev.KV)
		}
		if err != nil {
			r.log.WithError(err).WithField("key", ev.KV.Key).Warn("skipping undecodable object")
			obj = nil
		}
		r.mu.Lock()
		r.applyStored(ev, obj)
		r.setRev(ev.Revision)
		r.mu.Unlock()
	}
	return ctx.Err()
}

// applyStored applies a watch event whose object is already decoded (nil
// when it could not be); r.mu is held.
func (r *Resource) applyStored(ev storage.Event, obj runtime.Object) {
	key := ev.KV.Key
	old := r.objs[key]
	if ev.Type == storage.Delete {
		if old == nil {
			return
		}
		last := old
		if obj != nil {
			last = obj
		}
		// A deleted object is reported with the delete's revision, as
		// Kubernetes does.
		last = withRV(last, ev.Revision)
		r.apply(Event{Type: watch.Deleted, Object: last, Prev: old, Revision: ev.Revision}, key)
		return
	}
	if obj == nil {
		return
	}
	t := watch.Modified
	if old == nil {
		t = watch.Added
	}
	r.apply(Event{Type: t, Object: obj, Prev: old, Revision: ev.Revision}, key)
}

// apply changes the content and tells watchers; r.mu is held.
func (r *Resource) apply(ev Event, key string) {
	if old, ok := r.objs[key]; ok {
		r.indexRemove(key, old)
	}
	if ev.Type == watch.Deleted {
		delete(r.objs, key)
	} else {
		r.objs[key] = ev.Object
		r.indexAdd(key, ev.Object)
	}
	if dropped, ok := r.history.push(ev); ok {
		r.histLow = dropped.Revision
	}
	for w := range r.watches {
		if !w.offer(ev) {
			delete(r.watches, w)
		}
	}
}

func (r *Resource) setRev(rev int64) {
	if rev <= r.rev {
		return
	}
	r.rev = rev
	close(r.revCh)
	r.revCh = make(chan struct{})
}

func (r *Resource) indexAdd(key string, obj runtime.Object) {
	for name, f := range r.indexes {
		for _, v := range f(obj) {
			byVal := r.index[name]
			if byVal == nil {
				byVal = map[string]map[string]struct{}{}
				r.index[name] = byVal
			}
			keys := byVal[v]
			if keys == nil {
				keys = map[string]struct{}{}
				byVal[v] = keys
			}
			keys[key] = struct{}{}
		}
	}
}

func (r *Resource) indexRemove(key string, obj runtime.Object) {
	for name, f := range r.indexes {
		for _, v := range f(obj) {
			if keys := r.index[name][v]; keys != nil {
				delete(keys, key)
				if len(keys) == 0 {
					delete(r.index[name], v)
				}
			}
		}
	}
}

// WaitSynced blocks until the first list is loaded or ctx is done.
func (r *Resource) WaitSynced(ctx context.Context) error {
	select {
	case <-r.syncCh:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// HasSynced reports whether the first list is loaded.
func (r *Resource) HasSynced() bool {
	select {
	case <-r.syncCh:
		return true
	default:
		return false
	}
}

// Revision returns the revision the cache is consistent up to.
func (r *Resource) Revision() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.rev
}

// WaitForRevision blocks until the cache has seen every change up to rev,
// asking etcd for a progress notification when it is behind.
func (r *Resource) WaitForRevision(ctx context.Context, rev int64) error {
	asked := false
	for {
		r.mu.RLock()
		cur, ch := r.rev, r.revCh
		r.mu.RUnlock()
		if cur >= rev {
			return nil
		}
		if !asked {
			asked = true
			if err := r.store.RequestProgress(ctx); err != nil {
				return fmt.Errorf("request watch progress: %w", err)
			}
		}
		select {
		case <-ch:
		case <-time.After(100 * time.Millisecond):
			asked = false
		case <-ctx.Done():
			return fmt.Errorf("cache of %s at revision %d, waiting for %d: %w", r.name, cur, rev, ctx.Err())
		}
	}
}

// Get returns the object at key.
func (r *Resource) Get(key string) (runtime.Object, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	o, ok := r.objs[key]
	return o, ok
}

// List returns the objects whose index name has value (all objects when
// name is empty), sorted by key, and the cache's revision.
func (r *Resource) List(name, value string) ([]runtime.Object, int64) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.listLocked(name, value), r.rev
}

func (r *Resource) listLocked(name, value string) []runtime.Object {
	var keys []string
	if name == "" {
		keys = make([]string, 0, len(r.objs))
		for k := range r.objs {
			keys = append(keys, k)
		}
	} else {
		set := r.index[name][value]
		keys = make([]string, 0, len(set))
		for k := range set {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([]runtime.Object, len(keys))
	for i, k := range keys {
		out[i] = r.objs[k]
	}
	return out
}

// Key returns the storage key of a namespaced or cluster-scoped object.
func (r *Resource) Key(namespace, name string) string {
	if namespace == "" {
		return r.prefix + name
	}
	return r.prefix + namespace + "/" + name
}

// Prefix returns the resource's key prefix.
func (r *Resource) Prefix() string { return r.prefix }

func accessorOf(o runtime.Object) metav1Object {
	m, err := meta.Accessor(o)
	if err != nil {
		panic(fmt.Sprintf("cache: %T has no metadata", o))
	}
	return m
}

type metav1Object = interface {
	GetNamespace() string
	GetName() string
}

func rvOf(o runtime.Object) string {
	m, err := meta.Accessor(o)
	if err != nil {
		return ""
	}
	return m.GetResourceVersion()
}

func withRV(o runtime.Object, rev int64) runtime.Object {
	c := o.DeepCopyObject()
	if m, err := meta.Accessor(c); err == nil {
		m.SetResourceVersion(fmt.Sprint(rev))
	}
	return c
}
