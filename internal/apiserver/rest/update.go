package rest

import (
	"bytes"
	"context"
	"errors"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
	"github.com/mizzen-dev/mizzen/internal/storage"
)

var namespacesGVR = corev1.SchemeGroupVersion.WithResource("namespaces")

// UpdateFunc returns the desired object given the current one (a private
// copy the function may modify and return).
type UpdateFunc func(current runtime.Object) (runtime.Object, error)

// UpdateOptions modify an update.
type UpdateOptions struct {
	// Subresource is "" for the object, or "status".
	Subresource string
	DryRun      bool
	// Trusted skips the kind's validation (see CreateOptions).
	Trusted bool
}

// maxRetries bounds the read-modify-write loop of an update without a
// resourceVersion precondition.
const maxRetries = 16

// Update changes an existing object. When the object returned by fn carries
// a resourceVersion, the write happens only if the stored object still has
// it (409 Conflict otherwise); without one, the update is retried on
// concurrent changes.
func (s *Store) Update(ctx context.Context, k *registry.Kind, namespace, name string, fn UpdateFunc, o UpdateOptions) (runtime.Object, error) {
	key := s.key(k, namespace, name)
	for attempt := 0; ; attempt++ {
		kv, err := s.st.Get(ctx, key)
		if err != nil {
			return nil, s.storageError(k, name, err)
		}
		old, err := Decoder(k)(kv)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		obj, err := fn(old.DeepCopyObject())
		if err != nil {
			return nil, err
		}
		m := accessor(obj)
		precondition := m.GetResourceVersion() != ""
		if precondition && m.GetResourceVersion() != strconv.FormatInt(kv.Revision, 10) {
			return nil, conflict(k.GroupResource(), name)
		}
		// An unconditional update applies to the current object.
		m.SetResourceVersion(strconv.FormatInt(kv.Revision, 10))
		if err := s.prepareUpdate(k, obj, old, namespace, name, o); err != nil {
			return nil, err
		}
		rs, err := s.admit(ctx, registry.Update, k, obj, old)
		if err != nil {
			return nil, err
		}
		m.SetResourceVersion("")
		data, err := encode(k, obj)
		if err != nil {
			rs.abort()
			return nil, apierrors.NewInternalError(err)
		}
		if bytes.Equal(data, kv.Value) || o.DryRun {
			// Nothing changed (or nothing is to change): no write, the
			// resourceVersion stays.
			rs.abort()
			m.SetResourceVersion(strconv.FormatInt(kv.Revision, 10))
			return obj, nil
		}
		if deleteDuringUpdate(obj, old) {
			// The last finalizer of an object whose deletion has no grace
			// period left is gone: the object goes.
			rs.abort()
			if _, _, err := s.st.Delete(ctx, key, kv.Revision); err == nil {
				s.release(k, old)
				m.SetResourceVersion(strconv.FormatInt(kv.Revision, 10))
				return obj, nil
			} else if !errors.Is(err, storage.ErrConflict) || precondition || attempt >= maxRetries {
				return nil, s.storageError(k, name, err)
			}
			continue
		}
		rev, _, err := s.st.Update(ctx, key, data, kv.Revision, writeOptions(k)...)
		if err == nil {
			rs.commit()
			m.SetResourceVersion(strconv.FormatInt(rev, 10))
			return obj, nil
		}
		rs.abort()
		if !errors.Is(err, storage.ErrConflict) || precondition || attempt >= maxRetries {
			return nil, s.storageError(k, name, err)
		}
	}
}

// deleteDuringUpdate reports whether an update removes the object: its
// finalizers are gone and its deletion has no grace period left (a pod in
// its grace period stays until deleted again), as Kubernetes decides.
func deleteDuringUpdate(obj, old runtime.Object) bool {
	m, om := accessor(obj), accessor(old)
	if m.GetDeletionTimestamp() == nil || len(m.GetFinalizers()) > 0 {
		return false
	}
	if ns, ok := obj.(*corev1.Namespace); ok && len(ns.Spec.Finalizers) > 0 {
		return false // the namespace controller has not finalized it yet
	}
	g := om.GetDeletionGracePeriodSeconds()
	return g != nil && *g == 0
}

// prepareUpdate carries over what a client may not change, defaults and
// validates.
func (s *Store) prepareUpdate(k *registry.Kind, obj, old runtime.Object, namespace, name string, o UpdateOptions) error {
	sub := o.Subresource
	m, om := accessor(obj), accessor(old)
	if m.GetName() != name {
		return apierrors.NewBadRequest("the name of the object (" + m.GetName() + ") does not match the name on the URL (" + name + ")")
	}
	if k.Namespaced && m.GetNamespace() != "" && m.GetNamespace() != namespace {
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	m.SetNamespace(om.GetNamespace())
	m.SetUID(om.GetUID())
	m.SetCreationTimestamp(om.GetCreationTimestamp())
	m.SetDeletionTimestamp(om.GetDeletionTimestamp())
	m.SetDeletionGracePeriodSeconds(om.GetDeletionGracePeriodSeconds())
	m.SetGeneration(om.GetGeneration())
	m.SetSelfLink("")
	switch sub {
	case "status":
		// Only status (and metadata labels, annotations) change via /status.
		fresh := old.DeepCopyObject()
		copyField(fresh, obj, "Status")
		fm := accessor(fresh)
		fm.SetLabels(m.GetLabels())
		fm.SetAnnotations(m.GetAnnotations())
		fm.SetResourceVersion(m.GetResourceVersion())
		reflectSet(obj, fresh)
		m = accessor(obj)
	case "":
		if k.Status {
			copyField(obj, old, "Status")
		}
		if ns, ok := obj.(*corev1.Namespace); ok {
			// A namespace's finalizers change only through /finalize.
			ns.Spec.Finalizers = old.(*corev1.Namespace).Spec.Finalizers
		}
	case "finalize":
		// Only spec.finalizers change through /finalize.
		fresh := old.DeepCopyObject().(*corev1.Namespace)
		fresh.Spec.Finalizers = obj.(*corev1.Namespace).Spec.Finalizers
		fresh.ResourceVersion = m.GetResourceVersion()
		reflectSet(obj, fresh)
		m = accessor(obj)
	}
	// A binding changes spec.nodeName and status, which no user update may.
	binding := sub == "binding"
	if k.Strategy.PrepareForUpdate != nil {
		k.Strategy.PrepareForUpdate(obj, old)
	}
	if k.Strategy.Default != nil {
		k.Strategy.Default(obj)
	}
	if hasField(obj, "Spec") && !binding && specChanged(obj, old) && m.GetGeneration() > 0 {
		m.SetGeneration(om.GetGeneration() + 1)
	}
	var errs field.ErrorList
	switch {
	case sub == "status" && k.Strategy.ValidateStatusUpdate != nil:
		errs = k.Strategy.ValidateStatusUpdate(obj, old)
	case sub != "status" && !binding && k.Strategy.ValidateUpdate != nil:
		errs = k.Strategy.ValidateUpdate(obj, old)
	default:
		errs = apivalidation.ValidateObjectMetaAccessorUpdate(m, om, field.NewPath("metadata"))
	}
	if len(errs) > 0 && !o.Trusted {
		return apierrors.NewInvalid(k.GroupVersionKind().GroupKind(), name, errs)
	}
	return nil
}

// reflectSet overwrites *dst with *src (same type).
func reflectSet(dst, src runtime.Object) { valueOf(dst).Set(valueOf(src)) }
