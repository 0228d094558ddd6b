package tables

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func template(containers ...string) corev1.PodTemplateSpec {
	var t corev1.PodTemplateSpec
	for i := 0; i+1 < len(containers); i += 2 {
		t.Spec.Containers = append(t.Spec.Containers, corev1.Container{Name: containers[i], Image: containers[i+1]})
	}
	return t
}

func selector(labels map[string]string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: labels}
}

func TestDeploymentRows(t *testing.T) {
	d := &appsv1.Deployment{
		ObjectMeta: meta("web", 7*time.Minute+30*time.Second),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(3)),
			Selector: selector(map[string]string{"app": "web"}),
			Template: template("nginx", "nginx:1.29", "log", "busybox"),
		},
		Status: appsv1.DeploymentStatus{ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 2},
	}
	wantRow(t, deploymentsGR, d, "web", "2/3", int64(3), int64(2), "7m30s", "nginx,log", "nginx:1.29,busybox", "app=web")

	d.Spec.Replicas = nil
	d.Spec.Selector = nil
	d.Spec.Template = corev1.PodTemplateSpec{}
	d.Status = appsv1.DeploymentStatus{}
	wantRow(t, deploymentsGR, d, "web", "0/1", int64(0), int64(0), "7m30s", "", "", "")

	d.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Bogus"}}}
	if cells := row(t, deploymentsGR, d); cells[7] != "<invalid>" {
		t.Errorf("selector %v, want <invalid>", cells[7])
	}
}

func TestReplicaSetRows(t *testing.T) {
	rs := &appsv1.ReplicaSet{
		ObjectMeta: meta("web-6d4cf56db6", 4*time.Hour),
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr(int32(2)),
			Selector: selector(map[string]string{"app": "web", "pod-template-hash": "6d4cf56db6"}),
			Template: template("nginx", "nginx:1.29"),
		},
		Status: appsv1.ReplicaSetStatus{Replicas: 2, ReadyReplicas: 1},
	}
	wantRow(t, replicaSetsGR, rs, "web-6d4cf56db6", int64(2), int64(2), int64(1), "4h", "nginx", "nginx:1.29", "app=web,pod-template-hash=6d4cf56db6")

	rs.Spec.Replicas = ptr(int32(0))
	rs.Spec.Selector = nil
	rs.Status = appsv1.ReplicaSetStatus{}
	wantRow(t, replicaSetsGR, rs, "web-6d4cf56db6", int64(0), int64(0), int64(0), "4h", "nginx", "nginx:1.29", "<none>")
}

func TestDaemonSetRows(t *testing.T) {
	ds := &appsv1.DaemonSet{
		ObjectMeta: meta("proxy", 3*24*time.Hour+5*time.Hour),
		Spec: appsv1.DaemonSetSpec{
			Selector: selector(map[string]string{"app": "proxy"}),
			Template: template("proxy", "mizzen/proxy:v1"),
		},
		Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2, UpdatedNumberScheduled: 1, NumberAvailable: 2},
	}
	wantRow(t, daemonSetsGR, ds, "proxy", int64(3), int64(3), int64(2), int64(1), int64(2), "<none>", "3d5h", "proxy", "mizzen/proxy:v1", "app=proxy")

	ds.Spec.Template.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
	if cells := row(t, daemonSetsGR, ds); cells[6] != "kubernetes.io/os=linux" {
		t.Errorf("node selector %v", cells[6])
	}
}

func TestJobRows(t *testing.T) {
	cond := func(typ batchv1.JobConditionType, s corev1.ConditionStatus) batchv1.JobCondition {
		return batchv1.JobCondition{Type: typ, Status: s}
	}
	cases := []struct {
		name                           string
		deleted                        bool
		spec                           batchv1.JobSpec
		status                         batchv1.JobStatus
		state, completions, durationIs string
	}{
		{"not started", false, batchv1.JobSpec{Completions: ptr(int32(1))}, batchv1.JobStatus{},
			"Running", "0/1", ""},
		{"running", false, batchv1.JobSpec{Completions: ptr(int32(3))},
			batchv1.JobStatus{Succeeded: 1, StartTime: ptr(ago(45 * time.Second))},
			"Running", "1/3", "45s"},
		{"complete", false, batchv1.JobSpec{Completions: ptr(int32(1))},
			batchv1.JobStatus{Succeeded: 1, StartTime: ptr(ago(time.Hour)), CompletionTime: ptr(ago(time.Hour - 12*time.Second)),
				Conditions: []batchv1.JobCondition{cond(batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue), cond(batchv1.JobComplete, corev1.ConditionTrue)}},
			"Complete", "1/1", "12s"},
		{"failed", false, batchv1.JobSpec{Completions: ptr(int32(1))},
			batchv1.JobStatus{Failed: 7, StartTime: ptr(ago(time.Hour)),
				Conditions: []batchv1.JobCondition{cond(batchv1.JobFailureTarget, corev1.ConditionTrue), cond(batchv1.JobFailed, corev1.ConditionTrue)}},
			"Failed", "0/1", "60m"},
		{"terminating", true, batchv1.JobSpec{Completions: ptr(int32(1))}, batchv1.JobStatus{},
			"Terminating", "0/1", ""},
		{"suspended", false, batchv1.JobSpec{Completions: ptr(int32(1))},
			batchv1.JobStatus{Conditions: []batchv1.JobCondition{cond(batchv1.JobSuspended, corev1.ConditionTrue)}},
			"Suspended", "0/1", ""},
		{"resumed", false, batchv1.JobSpec{Completions: ptr(int32(1))},
			batchv1.JobStatus{Conditions: []batchv1.JobCondition{cond(batchv1.JobSuspended, corev1.ConditionFalse)}},
			"Running", "0/1", ""},
		{"failure target", false, batchv1.JobSpec{Completions: ptr(int32(1))},
			batchv1.JobStatus{Conditions: []batchv1.JobCondition{cond(batchv1.JobFailureTarget, corev1.ConditionTrue)}},
			"FailureTarget", "0/1", ""},
		{"success criteria met", false, batchv1.JobSpec{Completions: ptr(int32(1))},
			batchv1.JobStatus{Succeeded: 1, Conditions: []batchv1.JobCondition{cond(batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue)}},
			"SuccessCriteriaMet", "1/1", ""},
		{"work queue", false, batchv1.JobSpec{Parallelism: ptr(int32(4))}, batchv1.JobStatus{Succeeded: 2},
			"Running", "2/1 of 4", ""},
		{"single pod without completions", false, batchv1.JobSpec{Parallelism: ptr(int32(1))}, batchv1.JobStatus{},
			"Running", "0/1", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.spec.Selector = selector(map[string]string{"batch.kubernetes.io/controller-uid": "1234"})
			c.spec.Template = template("pi", "perl:5.40")
			job := &batchv1.Job{ObjectMeta: meta("pi", 2*time.Hour), Spec: c.spec, Status: c.status}
			if c.deleted {
				job.DeletionTimestamp = ptr(ago(time.Second))
			}
			wantRow(t, jobsGR, job, "pi", c.state, c.completions, c.durationIs, "120m",
				"pi", "perl:5.40", "batch.kubernetes.io/controller-uid=1234")
		})
	}
}
