package cache

import (
	"github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// NewMemory returns a resource that no etcd feeds: unit tests of
// controllers and the scheduler put objects in it with Put and Remove,
// which its watchers see as events, as they would see etcd's.
func NewMemory(name string, indexes map[string]IndexFunc) *Resource {
	r := newResource(name, "/memory/"+name+"/", nil, nil, indexes, logrus.NewEntry(logrus.New()))
	r.synced = true
	close(r.syncCh)
	return r
}

// Put adds or replaces obj (at its namespace/name) in a memory resource,
// giving it the next resourceVersion. The resource keeps obj: do not
// modify it afterwards.
func (r *Resource) Put(obj runtime.Object) {
	m := accessorOf(obj)
	key := r.Key(m.GetNamespace(), m.GetName())
	r.mu.Lock()
	defer r.mu.Unlock()
	rev := r.rev + 1
	obj = withRV(obj, rev)
	t := watch.Added
	old, ok := r.objs[key]
	if ok {
		t = watch.Modified
	}
	r.apply(Event{Type: t, Object: obj, Prev: old, Revision: rev}, key)
	r.setRev(rev)
}

// Remove deletes namespace/name from a memory resource.
func (r *Resource) Remove(namespace, name string) {
	key := r.Key(namespace, name)
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.objs[key]
	if !ok {
		return
	}
	rev := r.rev + 1
	r.apply(Event{Type: watch.Deleted, Object: withRV(old, rev), Prev: old, Revision: rev}, key)
	r.setRev(rev)
}
