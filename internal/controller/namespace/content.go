package namespace

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// remaining is what a namespace still holds after a deletion pass.
type remaining struct {
	objects    int
	byResource map[string]int // "pods." -> count
	byFinal    map[string]int // finalizer -> count
	failed     []string       // deletion errors
}

// deleteContent deletes every object of the namespace that is not yet
// being deleted and counts what is still there.
func (c *Controller) deleteContent(ctx context.Context, ns *corev1.Namespace) (remaining, error) {
	left := remaining{byResource: map[string]int{}, byFinal: map[string]int{}}
	background := metav1.DeletePropagationBackground
	var errs []error
	for _, r := range c.content {
		objs, _ := r.res.List("namespace", ns.Name)
		if len(objs) == 0 {
			continue
		}
		left.objects += len(objs)
		left.byResource[r.kind.GVR.Resource+"."+r.kind.GVR.Group] += len(objs)
		for _, o := range objs {
			m, err := meta.Accessor(o)
			if err != nil {
				continue
			}
			for _, f := range m.GetFinalizers() {
				left.byFinal[f]++
			}
			if m.GetDeletionTimestamp() != nil {
				continue
			}
			err = c.client.Delete(ctx, o, &metav1.DeleteOptions{PropagationPolicy: &background})
			if err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("delete %s %s/%s: %w", r.kind.GVR.Resource, ns.Name, m.GetName(), err))
				left.failed = append(left.failed, err.Error())
			}
		}
	}
	return left, errors.Join(errs...)
}

// conditions returns the namespace conditions Kubernetes reports while
// deleting a namespace's content.
func (left remaining) conditions() []corev1.NamespaceCondition {
	cond := func(t corev1.NamespaceConditionType, bad bool, okReason, okMsg, badReason, badMsg string) corev1.NamespaceCondition {
		if bad {
			return corev1.NamespaceCondition{Type: t, Status: corev1.ConditionTrue, Reason: badReason, Message: badMsg}
		}
		return corev1.NamespaceCondition{Type: t, Status: corev1.ConditionFalse, Reason: okReason, Message: okMsg}
	}
	var res, fins []string
	for r, n := range left.byResource {
		res = append(res, fmt.Sprintf("%s has %d resource instances", r, n))
	}
	for f, n := range left.byFinal {
		fins = append(fins, fmt.Sprintf("%s in %d resource instances", f, n))
	}
	sort.Strings(res)
	sort.Strings(fins)
	return []corev1.NamespaceCondition{
		cond(corev1.NamespaceDeletionDiscoveryFailure, false, "ResourcesDiscovered", "All resources successfully discovered", "", ""),
		cond(corev1.NamespaceDeletionGVParsingFailure, false, "ParsedGroupVersions", "All legacy kube types successfully parsed", "", ""),
		cond(corev1.NamespaceDeletionContentFailure, len(left.failed) > 0, "ContentDeleted", "All content successfully deleted, may be waiting on finalization",
			"ContentDeletionFailed", "Failed to delete all resource types, "+fmt.Sprint(len(left.failed))+" remaining: "+strings.Join(left.failed, ", ")),
		cond(corev1.NamespaceContentRemaining, len(res) > 0, "ContentRemoved", "All content successfully removed",
			"SomeResourcesRemain", "Some resources are remaining: "+strings.Join(res, ", ")),
		cond(corev1.NamespaceFinalizersRemaining, len(fins) > 0, "ContentHasNoFinalizers", "All content-preserving finalizers finished",
			"SomeFinalizersRemain", "Some content in the namespace has finalizers remaining: "+strings.Join(fins, ", ")),
	}
}

// updateConditions writes the deletion conditions and phase when they changed,
// keeping the transition time of those whose status did not.
func (c *Controller) updateConditions(ctx context.Context, ns *corev1.Namespace, left remaining) (*corev1.Namespace, error) {
	want := left.conditions()
	changed := len(ns.Status.Conditions) != len(want)
	now := metav1.NewTime(c.now())
	for i := range want {
		want[i].LastTransitionTime = now
		for _, old := range ns.Status.Conditions {
			if old.Type != want[i].Type {
				continue
			}
			if old.Status == want[i].Status {
				want[i].LastTransitionTime = old.LastTransitionTime
			}
			if old.Status != want[i].Status || old.Reason != want[i].Reason || old.Message != want[i].Message {
				changed = true
			}
		}
	}
	// The API server makes a deleted namespace Terminating, but not
	// when the delete adds metadata finalizers (foreground, orphan); the
	// namespace controller makes sure of it, as Kubernetes' does.
	if ns.Status.Phase != corev1.NamespaceTerminating {
		changed = true
	}
	if !changed {
		return ns, nil
	}
	up := ns.DeepCopy()
	up.Status.Phase = corev1.NamespaceTerminating
	up.Status.Conditions = want
	out, err := c.client.UpdateStatus(ctx, up)
	if err != nil {
		return nil, fmt.Errorf("update namespace %s conditions: %w", ns.Name, err)
	}
	return out.(*corev1.Namespace), nil
}
