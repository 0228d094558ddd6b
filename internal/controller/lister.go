package controller

import (
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/mizzen-dev/mizzen/internal/cache"
)

// Lister reads one resource's objects of Go type T from the shared cache.
// The objects are shared: copy before changing one.
type Lister[T runtime.Object] struct {
	Res *cache.Resource
}

// Get returns the object namespace/name (name for cluster-scoped ones).
func (l Lister[T]) Get(namespace, name string) (T, bool) {
	var zero T
	o, ok := l.Res.Get(l.Res.Key(namespace, name))
	if !ok {
		return zero, false
	}
	t, ok := o.(T)
	return t, ok
}

// List returns the objects of a namespace ("" for all) whose labels match
// sel (nil for all), sorted by namespace and name.
func (l Lister[T]) List(namespace string, sel labels.Selector) []T {
	var objs []runtime.Object
	if namespace != "" {
		objs, _ = l.Res.List("namespace", namespace)
	} else {
		objs, _ = l.Res.List("", "")
	}
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		t, ok := o.(T)
		if !ok {
			continue
		}
		if sel != nil && !sel.Empty() && !sel.Matches(labels.Set(accessorLabels(o))) {
			continue
		}
		out = append(out, t)
	}
	return out
}

// ByIndex returns the objects the cache indexes under index=value (for
// example "fields", "spec.nodeName=n1").
func (l Lister[T]) ByIndex(index, value string) []T {
	objs, _ := l.Res.List(index, value)
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}
