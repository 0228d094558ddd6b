package admission

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// Taints the node lifecycle controller puts on nodes that stop reporting.
const (
	TaintNotReady    = "node.kubernetes.io/not-ready"
	TaintUnreachable = "node.kubernetes.io/unreachable"
)

// DefaultTolerations gives new pods NoExecute tolerations of the
// not-ready and unreachable taints for a limited time unless they have
// their own, as Kubernetes' DefaultTolerationSeconds admission plugin
// does: a pod on a node that went away is evicted after that long.
type DefaultTolerations struct {
	NotReadySeconds, UnreachableSeconds int64
}

// Admit implements registry.Admission.
func (d DefaultTolerations) Admit(_ context.Context, op registry.Operation, _ *registry.Kind, obj, _ runtime.Object) (registry.Reservation, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || op != registry.Create {
		return nil, nil
	}
	var hasNotReady, hasUnreachable bool
	for _, t := range pod.Spec.Tolerations {
		if t.Effect != corev1.TaintEffectNoExecute && t.Effect != "" {
			continue
		}
		switch {
		case t.Key == "" && t.Operator == corev1.TolerationOpExists:
			hasNotReady, hasUnreachable = true, true
		case t.Key == TaintNotReady:
			hasNotReady = true
		case t.Key == TaintUnreachable:
			hasUnreachable = true
		}
	}
	if !hasNotReady {
		s := d.NotReadySeconds
		pod.Spec.Tolerations = append(pod.Spec.Tolerations, corev1.Toleration{Key: TaintNotReady,
			Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &s})
	}
	if !hasUnreachable {
		s := d.UnreachableSeconds
		pod.Spec.Tolerations = append(pod.Spec.Tolerations, corev1.Toleration{Key: TaintUnreachable,
			Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &s})
	}
	return nil, nil
}

// Release implements registry.Admission.
func (DefaultTolerations) Release(*registry.Kind, runtime.Object) {}
