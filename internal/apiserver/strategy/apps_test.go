package strategy

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func podTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}},
	}
}

func newDeployment() *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1", ResourceVersion: "1"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: podTemplate(map[string]string{"app": "web"}),
		},
	}
	strategyFor("apps", "deployments").Default(d)
	return d
}

func TestDeploymentDefaults(t *testing.T) {
	d := newDeployment()
	want := appsv1.DeploymentSpec{
		Replicas: ptrTo(int32(1)),
		Selector: d.Spec.Selector,
		Strategy: appsv1.DeploymentStrategy{
			Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: ptrTo(intstr.FromString("25%")),
				MaxSurge:       ptrTo(intstr.FromString("25%")),
			},
		},
		RevisionHistoryLimit:    ptrTo(int32(10)),
		ProgressDeadlineSeconds: ptrTo(int32(600)),
		Template:                d.Spec.Template,
	}
	if delta := diff.Diff(want, d.Spec); delta != "" {
		t.Errorf("spec (-want +got):\n%s", delta)
	}
	tpl := d.Spec.Template.Spec
	if tpl.RestartPolicy != corev1.RestartPolicyAlways || tpl.DNSPolicy != corev1.DNSClusterFirst ||
		*tpl.TerminationGracePeriodSeconds != 30 || tpl.Containers[0].ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("template not defaulted: %+v", tpl)
	}
	if tpl.EnableServiceLinks != nil {
		t.Errorf("template got pod-only default enableServiceLinks")
	}
}

func TestDeploymentValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*appsv1.Deployment)
		want   []string
	}{
		{"valid", func(*appsv1.Deployment) {}, nil},
		{"selector required", func(d *appsv1.Deployment) { d.Spec.Selector = nil }, []string{
			"spec.selector: Required value",
			`spec.template.metadata.labels: Invalid value: {"app":"web"}: ` + "`selector` does not match template `labels`",
		}},
		{"selector mismatch", func(d *appsv1.Deployment) { d.Spec.Template.Labels = map[string]string{"app": "api"} },
			[]string{`spec.template.metadata.labels: Invalid value: {"app":"api"}: ` + "`selector` does not match template `labels`"}},
		{"empty selector", func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} },
			[]string{"spec.selector: Invalid value: {}: empty selector is invalid for deployment"}},
		{"negative replicas", func(d *appsv1.Deployment) { d.Spec.Replicas = ptrTo(int32(-1)) },
			[]string{"spec.replicas: Invalid value: -1: must be greater than or equal to 0"}},
		{"restart policy", func(d *appsv1.Deployment) { d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever },
			[]string{`spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"`}},
		{"template pod spec", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "" },
			[]string{"spec.template.spec.containers[0].image: Required value"}},
		{"template without containers", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers = nil },
			[]string{"spec.template.spec.containers: Required value"}},
		{"both surge and unavailable zero", func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: ptrTo(intstr.FromInt32(0)), MaxSurge: ptrTo(intstr.FromInt32(0))}
		}, []string{"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"}},
		{"progress deadline", func(d *appsv1.Deployment) { d.Spec.MinReadySeconds = 600 },
			[]string{"spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeployment()
			tc.mutate(d)
			expectErrors(t, strategyFor("apps", "deployments").Validate(d), tc.want...)
		})
	}
}

func TestDeploymentSelectorIsImmutable(t *testing.T) {
	old := newDeployment()
	d := old.DeepCopy()
	d.Spec.Replicas = ptrTo(int32(3))
	d.Spec.Template.Spec.Containers[0].Image = "nginx:1.28"
	expectErrors(t, strategyFor("apps", "deployments").ValidateUpdate(d, old))

	d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "front"}}
	d.Spec.Template.Labels = map[string]string{"app": "web", "tier": "front"}
	expectErrors(t, strategyFor("apps", "deployments").ValidateUpdate(d, old),
		`spec.selector: Invalid value: {"matchLabels":{"app":"web","tier":"front"}}: field is immutable`)
}

func TestDeploymentStatusUpdate(t *testing.T) {
	old := newDeployment()
	d := old.DeepCopy()
	d.Status = appsv1.DeploymentStatus{Replicas: 1, ReadyReplicas: 2}
	expectErrors(t, strategyFor("apps", "deployments").ValidateStatusUpdate(d, old),
		"status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas")
}

func TestReplicaSet(t *testing.T) {
	s := strategyFor("apps", "replicasets")
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default", ResourceVersion: "1"},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: podTemplate(map[string]string{"app": "web"}),
		},
		Status: appsv1.ReplicaSetStatus{Replicas: 3},
	}
	s.Default(rs)
	s.PrepareForCreate(rs)
	if *rs.Spec.Replicas != 1 || rs.Status.Replicas != 0 {
		t.Errorf("replicas = %d, status = %+v", *rs.Spec.Replicas, rs.Status)
	}
	expectErrors(t, s.Validate(rs))
	rs.Spec.Template.Spec.ActiveDeadlineSeconds = ptrTo(int64(10))
	expectErrors(t, s.Validate(rs), "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported")
}

func TestDaemonSet(t *testing.T) {
	s := strategyFor("apps", "daemonsets")
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "kube-system", ResourceVersion: "1"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: podTemplate(map[string]string{"app": "agent"}),
		},
	}
	s.Default(ds)
	want := appsv1.DaemonSetUpdateStrategy{
		Type: appsv1.RollingUpdateDaemonSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDaemonSet{
			MaxUnavailable: ptrTo(intstr.FromInt32(1)),
			MaxSurge:       ptrTo(intstr.FromInt32(0)),
		},
	}
	if delta := diff.Diff(want, ds.Spec.UpdateStrategy); delta != "" {
		t.Errorf("update strategy (-want +got):\n%s", delta)
	}
	if *ds.Spec.RevisionHistoryLimit != 10 {
		t.Errorf("revisionHistoryLimit = %d", *ds.Spec.RevisionHistoryLimit)
	}
	expectErrors(t, s.Validate(ds))

	bad := ds.DeepCopy()
	bad.Spec.UpdateStrategy.RollingUpdate.MaxSurge = ptrTo(intstr.FromInt32(1))
	bad.Spec.Template.Labels = nil
	expectErrors(t, s.Validate(bad),
		"spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero",
		"spec.template.metadata.labels: Invalid value: null: `selector` does not match template `labels`")

	moved := ds.DeepCopy()
	moved.Spec.Selector.MatchLabels["tier"] = "node"
	moved.Spec.Template.Labels["tier"] = "node"
	expectErrors(t, s.ValidateUpdate(moved, ds), `spec.selector: Invalid value: {"matchLabels":{"app":"agent","tier":"node"}}: field is immutable`)
}
