package controller

import (
	"context"
	"fmt"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
	"github.com/mizzen-dev/mizzen/internal/apiserver/rest"
)

// Client is the seam through which controllers write. In the server it
// is the API server's REST store (defaulting, validation, admission,
// optimistic concurrency, as for users); unit tests use a fake.
type Client interface {
	// Create stores a new object (in obj's namespace).
	Create(ctx context.Context, obj runtime.Object) (runtime.Object, error)
	// Update replaces an object; its resourceVersion, when set, must
	// still be current (409 Conflict otherwise).
	Update(ctx context.Context, obj runtime.Object) (runtime.Object, error)
	// UpdateStatus replaces the status of an object (its /status).
	UpdateStatus(ctx context.Context, obj runtime.Object) (runtime.Object, error)
	// Delete deletes the object obj names (kind, namespace, name).
	Delete(ctx context.Context, obj runtime.Object, opts *metav1.DeleteOptions) error
	// Bind assigns a pod to a node through pods/binding.
	Bind(ctx context.Context, pod *corev1.Pod, node string) error
}

// StoreClient is the Client over the API server's REST store.
type StoreClient struct {
	store  *rest.Store
	byType map[reflect.Type]*registry.Kind
}

// NewStoreClient returns a Client writing through store.
func NewStoreClient(store *rest.Store) *StoreClient {
	c := &StoreClient{store: store, byType: map[reflect.Type]*registry.Kind{}}
	for _, k := range store.Registry().Kinds() {
		t := reflect.TypeOf(k.New())
		if _, ok := c.byType[t]; !ok {
			c.byType[t] = k
		}
	}
	return c
}

func (c *StoreClient) kind(obj runtime.Object) (*registry.Kind, metav1.Object, error) {
	k, ok := c.byType[reflect.TypeOf(obj)]
	if !ok {
		return nil, nil, fmt.Errorf("no kind is served for %T", obj)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, err
	}
	return k, m, nil
}

// Create implements Client.
func (c *StoreClient) Create(ctx context.Context, obj runtime.Object) (runtime.Object, error) {
	k, m, err := c.kind(obj)
	if err != nil {
		return nil, err
	}
	return c.store.Create(ctx, k, m.GetNamespace(), obj.DeepCopyObject(), rest.CreateOptions{})
}

// Update implements Client.
func (c *StoreClient) Update(ctx context.Context, obj runtime.Object) (runtime.Object, error) {
	return c.update(ctx, obj, "")
}

// UpdateStatus implements Client.
func (c *StoreClient) UpdateStatus(ctx context.Context, obj runtime.Object) (runtime.Object, error) {
	return c.update(ctx, obj, "status")
}

func (c *StoreClient) update(ctx context.Context, obj runtime.Object, sub string) (runtime.Object, error) {
	k, m, err := c.kind(obj)
	if err != nil {
		return nil, err
	}
	want := obj.DeepCopyObject()
	return c.store.Update(ctx, k, m.GetNamespace(), m.GetName(), func(runtime.Object) (runtime.Object, error) {
		return want.DeepCopyObject(), nil
	}, rest.UpdateOptions{Subresource: sub})
}

// Delete implements Client.
func (c *StoreClient) Delete(ctx context.Context, obj runtime.Object, opts *metav1.DeleteOptions) error {
	k, m, err := c.kind(obj)
	if err != nil {
		return err
	}
	_, err = c.store.Delete(ctx, k, m.GetNamespace(), m.GetName(), opts)
	return err
}

// Bind implements Client.
func (c *StoreClient) Bind(ctx context.Context, pod *corev1.Pod, node string) error {
	k, _, err := c.kind(pod)
	if err != nil {
		return err
	}
	return c.store.Bind(ctx, k, pod.Namespace, pod.Name, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	})
}

func accessorLabels(obj runtime.Object) map[string]string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil
	}
	return m.GetLabels()
}
