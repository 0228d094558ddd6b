package strategy

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestNamespaceCreate(t *testing.T) {
	s := strategyFor("", "namespaces")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}
	s.Default(ns)
	s.PrepareForCreate(ns)
	if got := ns.Labels[corev1.LabelMetadataName]; got != "team-a" {
		t.Errorf("name label = %q", got)
	}
	if delta := diff.Diff([]corev1.FinalizerName{"kubernetes"}, ns.Spec.Finalizers); delta != "" {
		t.Errorf("finalizers (-want +got):\n%s", delta)
	}
	if ns.Status.Phase != corev1.NamespaceActive {
		t.Errorf("phase = %q", ns.Status.Phase)
	}
	expectErrors(t, s.Validate(ns))
}

func TestNamespaceValidation(t *testing.T) {
	s := strategyFor("", "namespaces")
	for _, tc := range []struct {
		name string
		ns   *corev1.Namespace
		want []string
	}{
		{"name must be a DNS label", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team.a"}},
			[]string{`metadata.name: Invalid value: "team.a": ` + validation.IsDNS1123Label("team.a")[0]}},
		{"cluster scoped", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "b"}},
			[]string{"metadata.namespace: Forbidden: not allowed on this type"}},
		{"finalizer", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"custom"}}},
			[]string{`spec.finalizers: Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified`}},
	} {
		t.Run(tc.name, func(t *testing.T) { expectErrors(t, s.Validate(tc.ns), tc.want...) })
	}
}

func TestNamespaceStatusUpdate(t *testing.T) {
	s := strategyFor("", "namespaces")
	old := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a", ResourceVersion: "1"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	ns := old.DeepCopy()
	ns.Status.Phase = corev1.NamespaceTerminating
	expectErrors(t, s.ValidateStatusUpdate(ns, old), `status.Phase: Invalid value: "Terminating": may only be 'Active' if `+"`deletionTimestamp`"+` is empty`)
}

func TestNodeValidation(t *testing.T) {
	s := strategyFor("", "nodes")
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1", ResourceVersion: "1"},
		Spec:       corev1.NodeSpec{PodCIDRs: []string{"10.42.0.0/24"}, ProviderID: "mizzen://node-1"},
		Status:     corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}},
	}
	s.Default(node)
	if node.Status.Allocatable.Cpu().String() != "4" {
		t.Errorf("allocatable = %v", node.Status.Allocatable)
	}
	expectErrors(t, s.Validate(node))

	bad := node.DeepCopy()
	bad.Spec.Taints = []corev1.Taint{{Key: "dedicated", Effect: "Sometimes"}}
	expectErrors(t, s.Validate(bad), `metadata.taints[0].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"`)

	moved := node.DeepCopy()
	moved.Spec.PodCIDRs = []string{"10.42.1.0/24"}
	moved.Spec.ProviderID = "other://node-1"
	expectErrors(t, s.ValidateUpdate(moved, node),
		`spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid`,
		`spec.providerID: Forbidden: node updates may not change providerID except from "" to valid`)

	ready := node.DeepCopy()
	ready.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	expectErrors(t, s.ValidateStatusUpdate(ready, node))
}

func TestEndpointsValidation(t *testing.T) {
	s := strategyFor("", "endpoints")
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.42.0.5"}},
			Ports:     []corev1.EndpointPort{{Port: 80}},
		}},
	}
	s.Default(ep)
	if ep.Subsets[0].Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("protocol not defaulted")
	}
	expectErrors(t, s.Validate(ep))
	ep.Subsets = append(ep.Subsets, corev1.EndpointSubset{}, corev1.EndpointSubset{Addresses: []corev1.EndpointAddress{{IP: "127.0.0.1"}}})
	expectErrors(t, s.Validate(ep),
		"subsets[1]: Required value: must specify `addresses` or `notReadyAddresses`",
		`subsets[2].addresses[0].ip: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)`)
}

func TestConfigMapValidation(t *testing.T) {
	s := strategyFor("", "configmaps")
	for _, tc := range []struct {
		name string
		cm   corev1.ConfigMap
		want []string
	}{
		{"valid", corev1.ConfigMap{Data: map[string]string{"app.conf": "x"}}, nil},
		{"bad key", corev1.ConfigMap{Data: map[string]string{"a/b": "x"}},
			[]string{`data[a/b]: Invalid value: "a/b": ` + validation.IsConfigMapKey("a/b")[0]}},
		{"key in both", corev1.ConfigMap{Data: map[string]string{"k": "x"}, BinaryData: map[string][]byte{"k": {1}}},
			[]string{`data[k]: Invalid value: "k": duplicate of key present in binaryData`}},
		{"too large", corev1.ConfigMap{Data: map[string]string{"big": strings.Repeat("x", corev1.MaxSecretSize+1)}},
			[]string{"[]: Too long: may not be more than 1048576 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cm := tc.cm
			cm.ObjectMeta = metav1.ObjectMeta{Name: "cfg", Namespace: "default"}
			s.Default(&cm)
			expectErrors(t, s.Validate(&cm), tc.want...)
		})
	}
}

func TestImmutableConfigMapKeepsData(t *testing.T) {
	s := strategyFor("", "configmaps")
	old := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default", ResourceVersion: "1"},
		Immutable: ptrTo(true), Data: map[string]string{"k": "v"}}
	cm := old.DeepCopy()
	cm.Data["k"] = "changed"
	cm.Immutable = nil
	expectErrors(t, s.ValidateUpdate(cm, old),
		"immutable: Forbidden: field is immutable when `immutable` is set",
		"data: Forbidden: field is immutable when `immutable` is set")
}

func TestImmutableConfigMapFromStorageAcceptsSameData(t *testing.T) {
	s := strategyFor("", "configmaps")
	// Stored objects come back without empty maps.
	old := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default", ResourceVersion: "1"}, Immutable: ptrTo(true)}
	cm := old.DeepCopy()
	cm.Labels = map[string]string{"a": "b"}
	s.Default(cm)
	expectErrors(t, s.ValidateUpdate(cm, old))
}

func TestSecretDefaultsAndValidation(t *testing.T) {
	s := strategyFor("", "secrets")
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "default", ResourceVersion: "1"},
		StringData: map[string]string{"password": "hunter2"},
	}
	s.Default(secret)
	if secret.Type != corev1.SecretTypeOpaque || string(secret.Data["password"]) != "hunter2" || secret.StringData != nil {
		t.Errorf("defaulted secret = %+v", secret)
	}
	expectErrors(t, s.Validate(secret))

	tls := secret.DeepCopy()
	tls.Type = corev1.SecretTypeTLS
	expectErrors(t, s.Validate(tls), "data[tls.crt]: Required value", "data[tls.key]: Required value")
	expectErrors(t, s.ValidateUpdate(tls, secret),
		`type: Invalid value: "kubernetes.io/tls": field is immutable`, "data[tls.crt]: Required value", "data[tls.key]: Required value")
}

func TestServiceAccountValidation(t *testing.T) {
	s := strategyFor("", "serviceaccounts")
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder", Namespace: "default"}}
	expectErrors(t, s.Validate(sa))
	sa.Name = "Builder"
	expectErrors(t, s.Validate(sa), `metadata.name: Invalid value: "Builder": `+validation.IsDNS1123Subdomain("Builder")[0])
}

func TestCoreEventValidation(t *testing.T) {
	s := strategyFor("", "events")
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web.17f", Namespace: "default"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"},
		Reason:         "Started",
	}
	expectErrors(t, s.Validate(ev))
	ev.InvolvedObject.Namespace = "other"
	expectErrors(t, s.Validate(ev), `involvedObject.namespace: Invalid value: "other": does not match event.namespace`)

	ev.InvolvedObject.Namespace = "default"
	ev.EventTime = metav1.NewMicroTime(time.Now())
	want := []string{"reportingComponent: Required value", "reportingInstance: Required value", "action: Required value"}
	for _, msg := range content.IsQualifiedName("") {
		want = append(want, `reportingComponent: Invalid value: "": `+msg)
	}
	expectErrors(t, s.Validate(ev), want...)
}
