package gc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// ownerState classifies an ownerReference, as Kubernetes' garbage
// collector does.
type ownerState int

const (
	solid    ownerState = iota // the owner exists (or cannot be resolved)
	dangling                   // the owner is gone
	waiting                    // the owner is being deleted in the foreground
)

// ownerOf resolves ref, an ownerReference of the dependent m.
func (c *Controller) ownerOf(ctx context.Context, m metav1.Object, ref metav1.OwnerReference) (ownerState, error) {
	kr, ok := c.ownerKind(ref)
	if !ok {
		return solid, nil // a kind this server does not serve: keep the dependent
	}
	key := kr.res.Key(ownerNamespace(kr.kind, m.GetNamespace()), ref.Name)
	get := func() (metav1.Object, bool) {
		o, ok := kr.res.Get(key)
		if !ok {
			return nil, false
		}
		om, err := meta.Accessor(o)
		if err != nil || om.GetUID() != ref.UID {
			return nil, false
		}
		return om, true
	}
	owner, ok := get()
	if !ok {
		// The owner's cache may lag behind the dependent's.
		if rv, err := strconv.ParseInt(m.GetResourceVersion(), 10, 64); err == nil {
			if err := c.caughtUp(ctx, kr.res, rv); err != nil {
				return solid, err
			}
		}
		if owner, ok = get(); !ok {
			return dangling, nil
		}
	}
	if owner.GetDeletionTimestamp() != nil && slices.Contains(owner.GetFinalizers(), metav1.FinalizerDeleteDependents) {
		return waiting, nil
	}
	return solid, nil
}

// collect deletes the dependent obj when none of its owners remains, or
// drops its references to owners that are gone or going when others
// remain.
func (c *Controller) collect(ctx context.Context, obj runtime.Object, m metav1.Object) error {
	var keep, drop []metav1.OwnerReference
	anyWaiting := false
	for _, ref := range m.GetOwnerReferences() {
		st, err := c.ownerOf(ctx, m, ref)
		if err != nil {
			return err
		}
		if st == solid {
			keep = append(keep, ref)
			continue
		}
		drop = append(drop, ref)
		anyWaiting = anyWaiting || st == waiting
	}
	switch {
	case len(drop) == 0:
		return nil
	case len(keep) > 0:
		up := obj.DeepCopyObject()
		um, _ := meta.Accessor(up)
		um.SetOwnerReferences(keep)
		if _, err := c.client.Update(ctx, up); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("remove owner references: %w", err)
		}
		return nil
	}
	policy := metav1.DeletePropagationBackground
	switch {
	case anyWaiting && len(c.dependentsOf(m.GetUID())) > 0:
		policy = metav1.DeletePropagationForeground
	case slices.Contains(m.GetFinalizers(), metav1.FinalizerOrphanDependents):
		policy = metav1.DeletePropagationOrphan
	case slices.Contains(m.GetFinalizers(), metav1.FinalizerDeleteDependents):
		policy = metav1.DeletePropagationForeground
	}
	uid := m.GetUID()
	err := c.client.Delete(ctx, obj, &metav1.DeleteOptions{PropagationPolicy: &policy, Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete (%s): %w", policy, err)
	}
	c.log.WithField("object", m.GetNamespace()+"/"+m.GetName()).WithField("propagation", policy).Debug("deleted dependent")
	return nil
}

// finalizeOwner carries out the orphan or foreground deletion of obj.
func (c *Controller) finalizeOwner(ctx context.Context, obj runtime.Object, m metav1.Object) error {
	if ns, ok := obj.(*corev1.Namespace); ok && len(ns.Spec.Finalizers) > 0 {
		// The API server removes an object whose last metadata finalizer
		// goes, even a namespace still being emptied (Kubernetes keeps
		// it until spec.finalizers are empty too): wait for the namespace
		// controller. A namespace owns nothing else.
		return nil
	}
	switch {
	case slices.Contains(m.GetFinalizers(), metav1.FinalizerOrphanDependents):
		if err := c.orphan(ctx, m.GetUID()); err != nil {
			return err
		}
		return c.removeFinalizer(ctx, obj, metav1.FinalizerOrphanDependents)
	case slices.Contains(m.GetFinalizers(), metav1.FinalizerDeleteDependents):
		blocked, err := c.deleteDependents(ctx, m.GetUID())
		if err != nil || blocked {
			return err
		}
		return c.removeFinalizer(ctx, obj, metav1.FinalizerDeleteDependents)
	}
	return nil
}

// dependent is an object of the cache that names an owner.
type dependent struct {
	obj runtime.Object
	m   metav1.Object
	ref metav1.OwnerReference
}

// dependentObjects returns the current objects naming uid as an owner.
func (c *Controller) dependentObjects(uid types.UID) []dependent {
	var out []dependent
	for _, key := range c.dependentsOf(uid) {
		gr, ns, name := splitObjectKey(key)
		kr, ok := c.kinds[gr]
		if !ok {
			continue
		}
		o, ok := kr.res.Get(kr.res.Key(ns, name))
		if !ok {
			continue
		}
		m, err := meta.Accessor(o)
		if err != nil {
			continue
		}
		for _, ref := range m.GetOwnerReferences() {
			if ref.UID == uid {
				out = append(out, dependent{obj: o, m: m, ref: ref})
				break
			}
		}
	}
	return out
}

// orphan removes the references to owner uid from its dependents.
func (c *Controller) orphan(ctx context.Context, uid types.UID) error {
	var errs []error
	for _, d := range c.dependentObjects(uid) {
		up := d.obj.DeepCopyObject()
		um, _ := meta.Accessor(up)
		um.SetOwnerReferences(slices.DeleteFunc(um.GetOwnerReferences(), func(r metav1.OwnerReference) bool { return r.UID == uid }))
		if _, err := c.client.Update(ctx, up); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("orphan %s/%s: %w", d.m.GetNamespace(), d.m.GetName(), err))
		}
	}
	return errors.Join(errs...)
}

// deleteDependents deletes the dependents of owner uid (which is being
// deleted in the foreground) and reports whether some that block the
// owner's deletion remain.
func (c *Controller) deleteDependents(ctx context.Context, uid types.UID) (blocked bool, err error) {
	var errs []error
	for _, d := range c.dependentObjects(uid) {
		if d.ref.BlockOwnerDeletion != nil && *d.ref.BlockOwnerDeletion {
			blocked = true
		}
		if d.m.GetDeletionTimestamp() != nil {
			continue
		}
		if err := c.collect(ctx, d.obj, d.m); err != nil {
			errs = append(errs, fmt.Errorf("dependent %s/%s: %w", d.m.GetNamespace(), d.m.GetName(), err))
		}
	}
	return blocked, errors.Join(errs...)
}

// removeFinalizer removes finalizer f from obj (which then goes, when it
// was the last one).
func (c *Controller) removeFinalizer(ctx context.Context, obj runtime.Object, f string) error {
	up := obj.DeepCopyObject()
	um, _ := meta.Accessor(up)
	um.SetFinalizers(slices.DeleteFunc(um.GetFinalizers(), func(s string) bool { return s == f }))
	if _, err := c.client.Update(ctx, up); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove finalizer %s: %w", f, err)
	}
	return nil
}
