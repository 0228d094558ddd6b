// Package controllertest fakes the controller Client over memory caches,
// for unit tests of controllers and the scheduler.
package controllertest

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/mizzen-dev/mizzen/internal/apiserver/kinds"
	"github.com/mizzen-dev/mizzen/internal/controller"
)

// Action is one write the fake received.
type Action struct {
	Verb     string // create, update, update-status, delete, bind
	Resource string // plural resource name
	Key      string // namespace/name
	Object   runtime.Object
}

// Fake is a controller.Client that applies writes to memory resources
// (no defaulting, validation or admission) and records them.
type Fake struct {
	Resources controller.MemoryResources
	// Err, when set, is returned by every write whose verb and resource it
	// accepts (for failure tests).
	Err func(a Action) error

	mu      sync.Mutex
	actions []Action
}

// New returns a Fake over res.
func New(res controller.MemoryResources) *Fake { return &Fake{Resources: res} }

// Actions returns the writes so far.
func (f *Fake) Actions() []Action {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Action(nil), f.actions...)
}

// Reset forgets the recorded writes.
func (f *Fake) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actions = nil
}

var resources = func() map[string]schema.GroupResource {
	out := map[string]schema.GroupResource{}
	for _, k := range kinds.Registry().Kinds() {
		if k.Storage != nil {
			continue
		}
		out[fmt.Sprintf("%T", k.New())] = k.GroupResource()
	}
	return out
}()

func (f *Fake) record(verb string, obj runtime.Object) (schema.GroupResource, metav1.Object, error) {
	gr, ok := resources[fmt.Sprintf("%T", obj)]
	if !ok {
		return gr, nil, fmt.Errorf("no resource for %T", obj)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return gr, nil, err
	}
	a := Action{Verb: verb, Resource: gr.Resource, Key: controller.Key(obj), Object: obj}
	if f.Err != nil {
		if err := f.Err(a); err != nil {
			return gr, nil, err
		}
	}
	f.mu.Lock()
	f.actions = append(f.actions, a)
	f.mu.Unlock()
	return gr, m, nil
}

// Create implements controller.Client.
func (f *Fake) Create(_ context.Context, obj runtime.Object) (runtime.Object, error) {
	obj = obj.DeepCopyObject()
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	if m.GetName() == "" && m.GetGenerateName() != "" {
		m.SetName(m.GetGenerateName() + rand.String(5))
	}
	gr, _, err := f.record("create", obj)
	if err != nil {
		return nil, err
	}
	res := f.Resources.Resource(gr)
	if _, exists := res.Get(res.Key(m.GetNamespace(), m.GetName())); exists {
		return nil, apierrors.NewAlreadyExists(gr, m.GetName())
	}
	m.SetUID(types.UID(rand.String(16)))
	m.SetCreationTimestamp(metav1.NewTime(time.Now()))
	res.Put(obj)
	got, _ := res.Get(res.Key(m.GetNamespace(), m.GetName()))
	return got.DeepCopyObject(), nil
}

// Update implements controller.Client.
func (f *Fake) Update(_ context.Context, obj runtime.Object) (runtime.Object, error) {
	return f.update("update", obj)
}

// UpdateStatus implements controller.Client.
func (f *Fake) UpdateStatus(_ context.Context, obj runtime.Object) (runtime.Object, error) {
	return f.update("update-status", obj)
}

func (f *Fake) update(verb string, obj runtime.Object) (runtime.Object, error) {
	obj = obj.DeepCopyObject()
	gr, m, err := f.record(verb, obj)
	if err != nil {
		return nil, err
	}
	res := f.Resources.Resource(gr)
	cur, ok := res.Get(res.Key(m.GetNamespace(), m.GetName()))
	if !ok {
		return nil, apierrors.NewNotFound(gr, m.GetName())
	}
	cm, _ := meta.Accessor(cur)
	if rv := m.GetResourceVersion(); rv != "" && rv != cm.GetResourceVersion() {
		return nil, apierrors.NewConflict(gr, m.GetName(), fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
	}
	if deleteDuringUpdate(obj, cm) {
		res.Remove(m.GetNamespace(), m.GetName())
		return obj, nil
	}
	res.Put(obj)
	got, _ := res.Get(res.Key(m.GetNamespace(), m.GetName()))
	return got.DeepCopyObject(), nil
}

// Delete implements controller.Client: objects with finalizers get a
// deletionTimestamp, others go at once.
func (f *Fake) Delete(_ context.Context, obj runtime.Object, opts *metav1.DeleteOptions) error {
	gr, m, err := f.record("delete", obj)
	if err != nil {
		return err
	}
	res := f.Resources.Resource(gr)
	cur, ok := res.Get(res.Key(m.GetNamespace(), m.GetName()))
	if !ok {
		return apierrors.NewNotFound(gr, m.GetName())
	}
	cm, _ := meta.Accessor(cur)
	if len(cm.GetFinalizers()) > 0 {
		c := cur.DeepCopyObject()
		now := metav1.Now()
		mm, _ := meta.Accessor(c)
		if mm.GetDeletionTimestamp() == nil {
			zero := int64(0)
			mm.SetDeletionTimestamp(&now)
			mm.SetDeletionGracePeriodSeconds(&zero)
		}
		res.Put(c)
		return nil
	}
	res.Remove(m.GetNamespace(), m.GetName())
	return nil
}

// Bind implements controller.Client.
func (f *Fake) Bind(_ context.Context, pod *corev1.Pod, node string) error {
	gr, _, err := f.record("bind", pod)
	if err != nil {
		return err
	}
	res := f.Resources.Resource(gr)
	cur, ok := res.Get(res.Key(pod.Namespace, pod.Name))
	if !ok {
		return apierrors.NewNotFound(gr, pod.Name)
	}
	p := cur.DeepCopyObject().(*corev1.Pod)
	if p.Spec.NodeName != "" {
		return apierrors.NewConflict(gr, pod.Name, fmt.Errorf("pod %s is already assigned to node %q", pod.Name, p.Spec.NodeName))
	}
	p.Spec.NodeName = node
	res.Put(p)
	return nil
}

// deleteDuringUpdate mirrors the API server: an update removes an object
// whose last finalizer it drops when its deletion has no grace period left
// (and, for a namespace, once it is finalized).
func deleteDuringUpdate(obj runtime.Object, old metav1.Object) bool {
	m, _ := meta.Accessor(obj)
	if m.GetDeletionTimestamp() == nil || len(m.GetFinalizers()) > 0 {
		return false
	}
	if ns, ok := obj.(*corev1.Namespace); ok && len(ns.Spec.Finalizers) > 0 {
		return false
	}
	g := old.GetDeletionGracePeriodSeconds()
	return g != nil && *g == 0
}
