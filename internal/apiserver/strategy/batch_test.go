package strategy

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// newJob returns a job as the server stores it after create: defaulted,
// with a uid and a generated selector.
func newJob() *batchv1.Job {
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "pi", Namespace: "default", UID: "uid-1", ResourceVersion: "1"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "pi", Image: "perl:5.34"}},
		}}},
	}
	s := strategyFor("batch", "jobs")
	s.Default(job)
	s.PrepareForCreate(job)
	return job
}

func TestJobDefaultsAndGeneratedSelector(t *testing.T) {
	job := newJob()
	labels := map[string]string{
		"batch.kubernetes.io/controller-uid": "uid-1",
		"batch.kubernetes.io/job-name":       "pi",
		"controller-uid":                     "uid-1",
		"job-name":                           "pi",
	}
	want := batchv1.JobSpec{
		Parallelism:          ptrTo(int32(1)),
		Completions:          ptrTo(int32(1)),
		BackoffLimit:         ptrTo(int32(6)),
		Selector:             &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "uid-1"}},
		ManualSelector:       ptrTo(false),
		CompletionMode:       ptrTo(batchv1.NonIndexedCompletion),
		Suspend:              ptrTo(false),
		PodReplacementPolicy: ptrTo(batchv1.TerminatingOrFailed),
		Template:             job.Spec.Template,
	}
	if delta := diff.Diff(want, job.Spec); delta != "" {
		t.Errorf("spec (-want +got):\n%s", delta)
	}
	if delta := diff.Diff(labels, job.Spec.Template.Labels); delta != "" {
		t.Errorf("template labels (-want +got):\n%s", delta)
	}
	if delta := diff.Diff(labels, job.Labels); delta != "" {
		t.Errorf("job labels (-want +got):\n%s", delta)
	}
	expectErrors(t, strategyFor("batch", "jobs").Validate(job))
}

func TestJobWithOwnLabelsKeepsThem(t *testing.T) {
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "pi", Namespace: "default", UID: "uid-1", Labels: map[string]string{"team": "a"}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "pi"}},
			Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyOnFailure, Containers: []corev1.Container{{Name: "pi", Image: "perl"}}},
		}},
	}
	s := strategyFor("batch", "jobs")
	s.Default(job)
	s.PrepareForCreate(job)
	if delta := diff.Diff(map[string]string{"team": "a"}, job.Labels); delta != "" {
		t.Errorf("job labels (-want +got):\n%s", delta)
	}
	if job.Spec.Template.Labels["app"] != "pi" || job.Spec.Template.Labels["job-name"] != "pi" {
		t.Errorf("template labels = %v", job.Spec.Template.Labels)
	}
}

func TestManualSelectorIsKept(t *testing.T) {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pi"}}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "pi", Namespace: "default", UID: "uid-1"},
		Spec: batchv1.JobSpec{ManualSelector: ptrTo(true), Selector: sel, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "pi"}},
			Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "pi", Image: "perl"}}},
		}},
	}
	s := strategyFor("batch", "jobs")
	s.Default(job)
	s.PrepareForCreate(job)
	if delta := diff.Diff(map[string]string{"app": "pi"}, job.Spec.Template.Labels); delta != "" {
		t.Errorf("template labels (-want +got):\n%s", delta)
	}
	expectErrors(t, s.Validate(job))
}

func TestJobValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*batchv1.Job)
		want   []string
	}{
		{"restart policy", func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways },
			[]string{`spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"`}},
		{"negative parallelism", func(j *batchv1.Job) { j.Spec.Parallelism = ptrTo(int32(-1)) },
			[]string{"spec.parallelism: Invalid value: -1: must be greater than or equal to 0"}},
		{"generated label removed", func(j *batchv1.Job) { delete(j.Spec.Template.Labels, "job-name") },
			[]string{"spec.template.metadata.labels[job-name]: Required value: must be 'pi'"}},
		{"selector not generated", func(j *batchv1.Job) {
			j.Spec.Selector.MatchLabels["batch.kubernetes.io/controller-uid"] = "other"
			j.Spec.Template.Labels["batch.kubernetes.io/controller-uid"] = "other"
		}, []string{
			`spec.template.metadata.labels[batch.kubernetes.io/controller-uid]: Invalid value: {"batch.kubernetes.io/controller-uid":"other","batch.kubernetes.io/job-name":"pi","controller-uid":"uid-1","job-name":"pi"}: must be 'uid-1'`,
			`spec.selector: Invalid value: {"matchLabels":{"batch.kubernetes.io/controller-uid":"other"}}: ` + "`selector` not auto-generated",
		}},
		{"indexed without completions", func(j *batchv1.Job) {
			j.Spec.CompletionMode = ptrTo(batchv1.IndexedCompletion)
			j.Spec.Completions = nil
		}, []string{"spec.completions: Required value: when completion mode is Indexed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := newJob()
			tc.mutate(job)
			expectErrors(t, strategyFor("batch", "jobs").Validate(job), tc.want...)
		})
	}
}

func TestJobUpdateKeepsSelectorAndTemplate(t *testing.T) {
	s := strategyFor("batch", "jobs")
	old := newJob()

	suspended := old.DeepCopy()
	suspended.Spec.Suspend = ptrTo(true)
	suspended.Spec.Parallelism = ptrTo(int32(2))
	expectErrors(t, s.ValidateUpdate(suspended, old))

	changed := old.DeepCopy()
	changed.Spec.Template.Spec.Containers[0].Image = "perl:5.36"
	expectError(t, s.ValidateUpdate(changed, old), field.ErrorTypeInvalid, "spec.template", "field is immutable")

	completions := old.DeepCopy()
	completions.Spec.Completions = ptrTo(int32(3))
	expectErrors(t, s.ValidateUpdate(completions, old), "spec.completions: Invalid value: 3: field is immutable")
}

func TestJobStatusUpdate(t *testing.T) {
	old := newJob()
	job := old.DeepCopy()
	job.Status.Active = -1
	expectErrors(t, strategyFor("batch", "jobs").ValidateStatusUpdate(job, old), "status.active: Invalid value: -1: must be greater than or equal to 0")
}
