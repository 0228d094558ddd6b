// Package gc is the garbage collector: it deletes objects whose owners
// (metadata.ownerReferences) are gone, and carries out foreground and
// orphan deletion of owners, as kube-controller-manager's garbage
// collector does.
package gc

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mizzen-dev/mizzen/internal/apiserver/kinds"
	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
	"github.com/mizzen-dev/mizzen/internal/cache"
	"github.com/mizzen-dev/mizzen/internal/controller"
)

// Controller is the garbage collector. Queue keys are
// "resource.group|namespace/name" (see objectKey).
type Controller struct {
	client controller.Client
	reg    *registry.Registry
	kinds  map[schema.GroupResource]*kindRes
	queue  controller.Queue
	log    *logrus.Entry
	// caughtUp waits until the cache of res has seen every change up to
	// rev, so that an owner created just before its dependent is not
	// taken for gone; tests replace it.
	caughtUp func(ctx context.Context, res *cache.Resource, rev int64) error

	mu sync.Mutex // guards dependents
	// dependents maps an owner's uid to the keys of the objects that
	// name it in their ownerReferences (rebuilt from the watches).
	dependents map[types.UID]map[string]struct{}
}

// kindRes is one served kind and its cache.
type kindRes struct {
	kind *registry.Kind
	res  *cache.Resource
}

// New returns a garbage collector over env.
func New(env controller.Env) *Controller {
	c := &Controller{
		client:     env.Client,
		reg:        kinds.Registry(),
		kinds:      map[schema.GroupResource]*kindRes{},
		queue:      env.NewQueue("garbagecollector"),
		log:        env.Log.WithField("controller", "garbagecollector"),
		dependents: map[types.UID]map[string]struct{}{},
		caughtUp: func(ctx context.Context, res *cache.Resource, rev int64) error {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return res.WaitForRevision(ctx, rev)
		},
	}
	for _, k := range c.reg.Kinds() {
		if k.Storage == nil {
			c.kinds[k.GroupResource()] = &kindRes{kind: k, res: env.Resources.Resource(k.GroupResource())}
		}
	}
	return c
}

// Run collects garbage until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	for gr, kr := range c.kinds {
		go controller.Watch(ctx, kr.res, c.handler(gr))
	}
	return controller.Run(ctx, c.queue, 4, c.log, c.sync)
}

// objectKey is the queue key of an object of resource gr.
func objectKey(gr schema.GroupResource, namespace, name string) string {
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	return gr.String() + "|" + key
}

func splitObjectKey(key string) (schema.GroupResource, string, string) {
	gr, rest, _ := strings.Cut(key, "|")
	ns, name := controller.SplitKey(rest)
	return schema.ParseGroupResource(gr), ns, name
}

// handler keeps the dependents index and enqueues the object, and on
// deletion its dependents (whose owner may be gone) and owners (which
// may wait for it).
func (c *Controller) handler(gr schema.GroupResource) controller.Handler {
	key := func(m metav1.Object) string { return objectKey(gr, m.GetNamespace(), m.GetName()) }
	return controller.Handler{
		Add: func(obj runtime.Object) {
			m, err := meta.Accessor(obj)
			if err != nil {
				return
			}
			c.index(key(m), nil, m.GetOwnerReferences())
			c.queue.Add(key(m))
		},
		Update: func(old, obj runtime.Object) {
			m, err := meta.Accessor(obj)
			if err != nil {
				return
			}
			var prev []metav1.OwnerReference
			if om, err := meta.Accessor(old); err == nil && old != nil {
				prev = om.GetOwnerReferences()
			}
			c.index(key(m), prev, m.GetOwnerReferences())
			c.queue.Add(key(m))
			// An owner waiting for its dependents learns that one let go.
			for _, ref := range prev {
				if !slices.ContainsFunc(m.GetOwnerReferences(), func(r metav1.OwnerReference) bool { return r.UID == ref.UID }) {
					c.enqueueOwner(m.GetNamespace(), ref)
				}
			}
		},
		Delete: func(obj runtime.Object) {
			m, err := meta.Accessor(obj)
			if err != nil {
				return
			}
			c.index(key(m), m.GetOwnerReferences(), nil)
			for _, d := range c.dependentsOf(m.GetUID()) {
				c.queue.Add(d)
			}
			for _, ref := range m.GetOwnerReferences() {
				c.enqueueOwner(m.GetNamespace(), ref)
			}
		},
	}
}

// enqueueOwner enqueues the owner ref names, of a dependent in namespace ns.
func (c *Controller) enqueueOwner(ns string, ref metav1.OwnerReference) {
	if k, ok := c.ownerKind(ref); ok {
		c.queue.Add(objectKey(k.kind.GroupResource(), ownerNamespace(k.kind, ns), ref.Name))
	}
}

// index moves key from the dependents of old owners to those of now.
func (c *Controller) index(key string, old, now []metav1.OwnerReference) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range old {
		if set := c.dependents[r.UID]; set != nil {
			delete(set, key)
			if len(set) == 0 {
				delete(c.dependents, r.UID)
			}
		}
	}
	for _, r := range now {
		set := c.dependents[r.UID]
		if set == nil {
			set = map[string]struct{}{}
			c.dependents[r.UID] = set
		}
		set[key] = struct{}{}
	}
}

// forget drops key (an object no longer in the cache) from the index.
func (c *Controller) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for uid, set := range c.dependents {
		delete(set, key)
		if len(set) == 0 {
			delete(c.dependents, uid)
		}
	}
}

func (c *Controller) dependentsOf(uid types.UID) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.dependents[uid]))
	for k := range c.dependents[uid] {
		out = append(out, k)
	}
	sort.Strings(out) // a stable order of writes
	return out
}

// ownerKind resolves an ownerReference's apiVersion and kind.
func (c *Controller) ownerKind(ref metav1.OwnerReference) (*kindRes, bool) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, false
	}
	k, ok := c.reg.LookupKind(gv.WithKind(ref.Kind))
	if !ok {
		return nil, false
	}
	if k.Storage != nil {
		k = k.Storage
	}
	kr, ok := c.kinds[k.GroupResource()]
	return kr, ok
}

// ownerNamespace is where an owner of kind k of an object in namespace ns
// lives: namespaced owners share their dependents' namespace.
func ownerNamespace(k *registry.Kind, ns string) string {
	if k.Namespaced {
		return ns
	}
	return ""
}

func (c *Controller) sync(ctx context.Context, key string) error {
	gr, ns, name := splitObjectKey(key)
	kr, ok := c.kinds[gr]
	if !ok {
		return nil
	}
	obj, ok := kr.res.Get(kr.res.Key(ns, name))
	if !ok {
		c.forget(key)
		return nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil
	}
	if m.GetDeletionTimestamp() != nil {
		if err := c.finalizeOwner(ctx, obj, m); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	}
	if len(m.GetOwnerReferences()) > 0 {
		if err := c.collect(ctx, obj, m); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}
