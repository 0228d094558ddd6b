package controllertest

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// FinalizeNamespace implements controller.NamespaceFinalizer: only
// spec.finalizers change (recorded as verb "finalize").
func (f *Fake) FinalizeNamespace(_ context.Context, ns *corev1.Namespace) (*corev1.Namespace, error) {
	gr, _, err := f.record("finalize", ns.DeepCopy())
	if err != nil {
		return nil, err
	}
	res := f.Resources.Resource(gr)
	cur, ok := res.Get(res.Key("", ns.Name))
	if !ok {
		return nil, apierrors.NewNotFound(gr, ns.Name)
	}
	c := cur.DeepCopyObject().(*corev1.Namespace)
	if ns.ResourceVersion != "" && ns.ResourceVersion != c.ResourceVersion {
		return nil, apierrors.NewConflict(gr, ns.Name, fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
	}
	c.Spec.Finalizers = append([]corev1.FinalizerName(nil), ns.Spec.Finalizers...)
	res.Put(c)
	got, _ := res.Get(res.Key("", ns.Name))
	return got.DeepCopyObject().(*corev1.Namespace), nil
}
