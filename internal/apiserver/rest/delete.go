package rest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
	"github.com/mizzen-dev/mizzen/internal/storage"
)

// DeleteResult says what a delete did.
type DeleteResult struct {
	// Object is the deleted object, or the object marked for deletion.
	Object runtime.Object
	// Pending is true when the object was only marked (finalizers, or a
	// pod's grace period) and still exists.
	Pending bool
}

// Delete deletes an object, honouring preconditions, finalizers, the
// propagation policy and (for pods) the grace period.
func (s *Store) Delete(ctx context.Context, k *registry.Kind, namespace, name string, o *metav1.DeleteOptions) (DeleteResult, error) {
	if o == nil {
		o = &metav1.DeleteOptions{}
	}
	key := s.key(k, namespace, name)
	dryRun := slices.Contains(o.DryRun, metav1.DryRunAll)
	for attempt := 0; ; attempt++ {
		kv, err := s.st.Get(ctx, key)
		if err != nil {
			return DeleteResult{}, s.storageError(k, name, err)
		}
		obj, err := Decoder(k)(kv)
		if err != nil {
			return DeleteResult{}, apierrors.NewInternalError(err)
		}
		m := accessor(obj)
		if p := o.Preconditions; p != nil {
			if p.UID != nil && *p.UID != m.GetUID() {
				return DeleteResult{}, apierrors.NewConflict(k.GroupResource(), name,
					fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, m.GetUID()))
			}
			if p.ResourceVersion != nil && *p.ResourceVersion != m.GetResourceVersion() {
				return DeleteResult{}, apierrors.NewConflict(k.GroupResource(), name,
					fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, m.GetResourceVersion()))
			}
		}
		marked, graceful := s.markForDeletion(k, obj, o)
		if marked {
			if dryRun {
				return DeleteResult{Object: obj, Pending: true}, nil
			}
			data, err := encode(k, obj)
			if err != nil {
				return DeleteResult{}, apierrors.NewInternalError(err)
			}
			rev, _, err := s.st.Update(ctx, key, data, kv.Revision)
			if err == nil {
				m.SetResourceVersion(strconv.FormatInt(rev, 10))
				return DeleteResult{Object: obj, Pending: true}, nil
			}
			if !errors.Is(err, storage.ErrConflict) || attempt >= maxRetries {
				return DeleteResult{}, s.storageError(k, name, err)
			}
			continue
		}
		if graceful || len(m.GetFinalizers()) > 0 {
			// Already marked and waiting: nothing more to do.
			return DeleteResult{Object: obj, Pending: true}, nil
		}
		if dryRun {
			return DeleteResult{Object: obj}, nil
		}
		if _, _, err := s.st.Delete(ctx, key, kv.Revision); err != nil {
			if errors.Is(err, storage.ErrConflict) && attempt < maxRetries {
				continue
			}
			return DeleteResult{}, s.storageError(k, name, err)
		}
		s.release(k, obj)
		return DeleteResult{Object: obj}, nil
	}
}

// markForDeletion sets deletionTimestamp when the object must linger
// (finalizers, foreground or orphan propagation, a pod's grace period). It
// reports whether obj changed and whether a grace period is running.
func (s *Store) markForDeletion(k *registry.Kind, obj runtime.Object, o *metav1.DeleteOptions) (changed, graceful bool) {
	m := accessor(obj)
	fins := m.GetFinalizers()
	policy := o.PropagationPolicy
	if policy == nil && o.OrphanDependents != nil && *o.OrphanDependents {
		p := metav1.DeletePropagationOrphan
		policy = &p
	}
	if policy != nil {
		var want string
		switch *policy {
		case metav1.DeletePropagationForeground:
			want = metav1.FinalizerDeleteDependents
		case metav1.DeletePropagationOrphan:
			want = metav1.FinalizerOrphanDependents
		}
		if want != "" && !slices.Contains(fins, want) {
			fins = append(fins, want)
			m.SetFinalizers(fins)
			changed = true
		}
	}
	grace := s.gracePeriod(k, obj, o)
	if grace > 0 {
		graceful = true
		if cur := m.GetDeletionGracePeriodSeconds(); cur == nil || *cur > grace {
			deadline := metav1.NewTime(s.now().Add(durationSeconds(grace)).Truncate(1e9))
			m.SetDeletionTimestamp(&deadline)
			m.SetDeletionGracePeriodSeconds(&grace)
			changed = true
		}
	}
	if len(fins) > 0 && m.GetDeletionTimestamp() == nil {
		now := metav1.NewTime(s.now().Truncate(1e9))
		m.SetDeletionTimestamp(&now)
		zero := int64(0)
		m.SetDeletionGracePeriodSeconds(&zero)
		changed = true
	}
	if ns, ok := obj.(*corev1.Namespace); ok && ns.DeletionTimestamp != nil && ns.Status.Phase != corev1.NamespaceTerminating {
		// Marked for a metadata finalizer (foreground, orphan): terminating.
		ns.Status.Phase = corev1.NamespaceTerminating
		changed = true
	}
	if k.GVR == namespacesGVR && len(fins) == 0 {
		// A namespace always terminates through the namespace controller,
		// which empties spec.finalizers.
		ns := obj.(*corev1.Namespace)
		if len(ns.Spec.Finalizers) > 0 {
			if ns.DeletionTimestamp == nil {
				now := metav1.NewTime(s.now().Truncate(1e9))
				ns.DeletionTimestamp = &now
				changed = true
			}
			if ns.Status.Phase != corev1.NamespaceTerminating {
				ns.Status.Phase = corev1.NamespaceTerminating
				changed = true
			}
			graceful = true
		}
	}
	return changed, graceful
}

// gracePeriod returns the seconds a pod bound to a node gets to stop; 0
// for everything else (deleted at once).
func (s *Store) gracePeriod(k *registry.Kind, obj runtime.Object, o *metav1.DeleteOptions) int64 {
	pod, ok := obj.(*corev1.Pod)
	if !ok || k.GVR.Resource != "pods" {
		return 0
	}
	if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return 0
	}
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	if o.GracePeriodSeconds != nil {
		grace = *o.GracePeriodSeconds
	}
	return grace
}
