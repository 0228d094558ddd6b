package admission

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

func TestDefaultTolerationsAddedUnlessPresent(t *testing.T) {
	d := DefaultTolerations{NotReadySeconds: 300, UnreachableSeconds: 120}
	pod := &corev1.Pod{}
	d.Admit(context.Background(), registry.Create, nil, pod, nil)
	if len(pod.Spec.Tolerations) != 2 || *pod.Spec.Tolerations[0].TolerationSeconds != 300 || *pod.Spec.Tolerations[1].TolerationSeconds != 120 ||
		pod.Spec.Tolerations[1].Key != TaintUnreachable || pod.Spec.Tolerations[1].Effect != corev1.TaintEffectNoExecute {
		t.Fatalf("tolerations %+v", pod.Spec.Tolerations)
	}
	own := &corev1.Pod{Spec: corev1.PodSpec{Tolerations: []corev1.Toleration{{Key: TaintNotReady, Operator: corev1.TolerationOpExists}}}}
	d.Admit(context.Background(), registry.Create, nil, own, nil)
	if len(own.Spec.Tolerations) != 2 || own.Spec.Tolerations[1].Key != TaintUnreachable {
		t.Fatalf("own toleration kept and only unreachable added: %+v", own.Spec.Tolerations)
	}
	all := &corev1.Pod{Spec: corev1.PodSpec{Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}}}
	d.Admit(context.Background(), registry.Create, nil, all, nil)
	if len(all.Spec.Tolerations) != 1 {
		t.Fatalf("tolerate-everything pod got more: %+v", all.Spec.Tolerations)
	}
	upd := &corev1.Pod{}
	d.Admit(context.Background(), registry.Update, nil, upd, nil)
	if len(upd.Spec.Tolerations) != 0 {
		t.Fatal("tolerations added on update")
	}
}
