package strategy

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestEveryServedKindHasAStrategy(t *testing.T) {
	for _, gr := range []schema.GroupResource{
		{Resource: "namespaces"}, {Resource: "nodes"}, {Resource: "pods"}, {Resource: "services"},
		{Resource: "endpoints"}, {Resource: "configmaps"}, {Resource: "secrets"}, {Resource: "events"},
		{Resource: "serviceaccounts"}, {Group: "apps", Resource: "deployments"}, {Group: "apps", Resource: "replicasets"},
		{Group: "apps", Resource: "daemonsets"}, {Group: "batch", Resource: "jobs"},
		{Group: "coordination.k8s.io", Resource: "leases"}, {Group: "discovery.k8s.io", Resource: "endpointslices"},
		{Group: "events.k8s.io", Resource: "events"},
	} {
		s := For(gr)
		if s.Validate == nil || s.ValidateUpdate == nil {
			t.Errorf("%s: no validation", gr)
		}
	}
	if s := For(schema.GroupResource{Group: "example.com", Resource: "widgets"}); s.Validate != nil || s.Default != nil {
		t.Errorf("unknown resource got a strategy")
	}
}

func TestWrongTypeIsAnInternalErrorNotAPanic(t *testing.T) {
	s := strategyFor("", "pods")
	s.Default(&appsv1.Deployment{})
	s.PrepareForCreate(&appsv1.Deployment{})
	errs := s.Validate(&appsv1.Deployment{})
	if len(errs) != 1 || errs[0].Type != field.ErrorTypeInternal {
		t.Errorf("Validate = %v, want one internal error", errs)
	}
	errs = s.ValidateUpdate(&corev1.Pod{}, &appsv1.Deployment{})
	if len(errs) != 1 || errs[0].Type != field.ErrorTypeInternal {
		t.Errorf("ValidateUpdate = %v, want one internal error", errs)
	}
}

func TestMetadataUpdateRules(t *testing.T) {
	s := strategyFor("", "configmaps")
	old := &corev1.ConfigMap{}
	old.Name, old.Namespace, old.UID, old.ResourceVersion, old.Generation = "cfg", "default", "uid-1", "5", 2
	cm := old.DeepCopy()
	cm.UID = "uid-2"
	cm.Generation = 1
	cm.Finalizers = []string{"custom"}
	s.Default(cm)
	expectErrors(t, s.ValidateUpdate(cm, old),
		`metadata.uid: Invalid value: "uid-2": field is immutable`,
		"metadata.generation: Invalid value: 1: must not be decremented",
		`metadata.finalizers[0]: Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified`)
}
