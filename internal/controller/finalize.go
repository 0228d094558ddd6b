package controller

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/mizzen-dev/mizzen/internal/apiserver/rest"
)

// NamespaceFinalizer is implemented by Clients that can write a
// namespace's /finalize subresource: only spec.finalizers change.
type NamespaceFinalizer interface {
	FinalizeNamespace(ctx context.Context, ns *corev1.Namespace) (*corev1.Namespace, error)
}

// FinalizeNamespace implements NamespaceFinalizer: it sets the stored
// namespace's spec.finalizers to those of ns, as PUT .../finalize does.
// A resourceVersion on ns is a precondition.
func (c *StoreClient) FinalizeNamespace(ctx context.Context, ns *corev1.Namespace) (*corev1.Namespace, error) {
	k, _, err := c.kind(ns)
	if err != nil {
		return nil, err
	}
	want := ns.DeepCopy()
	out, err := c.store.Update(ctx, k, "", ns.Name, func(cur runtime.Object) (runtime.Object, error) {
		c, _ := cur.(*corev1.Namespace)
		c.Spec.Finalizers = want.Spec.Finalizers
		if want.ResourceVersion != "" {
			c.ResourceVersion = want.ResourceVersion
		}
		return c, nil
	}, rest.UpdateOptions{Subresource: "finalize"})
	if err != nil {
		return nil, err
	}
	return out.(*corev1.Namespace), nil
}
