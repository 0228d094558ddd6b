package strategy

import (
	"fmt"
	"maps"
	"math"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// The labels that tie a job's pods to it, legacy ones included.
const (
	legacyControllerUIDLabel = "controller-uid"
	legacyJobNameLabel       = "job-name"
	maxParallelismIndexed    = 100000
)

func jobStrategy() registry.Strategy {
	return typed[*batchv1.Job]{
		defaults:         defaultJob,
		prepareForCreate: prepareJobForCreate,
		validate: func(job *batchv1.Job) field.ErrorList {
			return validateJob(job, true)
		},
		validateUpdate:       validateJobUpdate,
		validateStatusUpdate: validateJobStatusUpdate,
	}.strategy()
}

func defaultJob(job *batchv1.Job) {
	spec := &job.Spec
	if spec.Completions == nil && spec.Parallelism == nil {
		spec.Completions = ptrTo(int32(1))
	}
	if spec.Parallelism == nil {
		spec.Parallelism = ptrTo(int32(1))
	}
	if spec.BackoffLimit == nil {
		if spec.BackoffLimitPerIndex != nil {
			spec.BackoffLimit = ptrTo(int32(math.MaxInt32))
		} else {
			spec.BackoffLimit = ptrTo(int32(6))
		}
	}
	if spec.Template.Labels != nil && len(job.Labels) == 0 {
		job.Labels = maps.Clone(spec.Template.Labels)
	}
	if spec.CompletionMode == nil {
		spec.CompletionMode = ptrTo(batchv1.NonIndexedCompletion)
	}
	if spec.Suspend == nil {
		spec.Suspend = ptrTo(false)
	}
	if spec.PodReplacementPolicy == nil {
		policy := batchv1.TerminatingOrFailed
		if spec.PodFailurePolicy != nil {
			policy = batchv1.Failed
		}
		spec.PodReplacementPolicy = &policy
	}
	if spec.ManualSelector == nil {
		spec.ManualSelector = ptrTo(false)
	}
	if pfp := spec.PodFailurePolicy; pfp != nil {
		for i := range pfp.Rules {
			for j := range pfp.Rules[i].OnPodConditions {
				if p := &pfp.Rules[i].OnPodConditions[j]; p.Status == "" {
					p.Status = corev1.ConditionTrue
				}
			}
		}
	}
	defaultPodTemplate(&spec.Template)
}

// prepareJobForCreate clears the status and, unless the selector is
// manual, labels the pod template with the job's uid and name and selects
// on the uid. The uid is set by the server before this runs.
func prepareJobForCreate(job *batchv1.Job) {
	job.Status = batchv1.JobStatus{}
	if job.Spec.ManualSelector != nil && *job.Spec.ManualSelector {
		return
	}
	t := &job.Spec.Template
	// Kubernetes defaults the job's labels to the template's map itself,
	// so they show the generated labels too.
	shared := len(job.Labels) == 0 || maps.Equal(job.Labels, t.Labels)
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	for _, key := range []string{legacyJobNameLabel, batchv1.JobNameLabel} {
		if _, ok := t.Labels[key]; !ok {
			t.Labels[key] = job.Name
		}
	}
	for _, key := range []string{legacyControllerUIDLabel, batchv1.ControllerUidLabel} {
		if _, ok := t.Labels[key]; !ok {
			t.Labels[key] = string(job.UID)
		}
	}
	if job.Spec.Selector == nil {
		job.Spec.Selector = &metav1.LabelSelector{}
	}
	if job.Spec.Selector.MatchLabels == nil {
		job.Spec.Selector.MatchLabels = map[string]string{}
	}
	if _, ok := job.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel]; !ok {
		job.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel] = string(job.UID)
	}
	if shared {
		job.Labels = maps.Clone(t.Labels)
	}
}

// validateJob validates a job; batchLabels requires the
// batch.kubernetes.io labels, which jobs created before them lack.
func validateJob(job *batchv1.Job, batchLabels bool) field.ErrorList {
	errs := validateObjectMeta(&job.ObjectMeta, true, nameIsDNSSubdomain)
	errs = append(errs, validateGeneratedSelector(job, batchLabels)...)
	errs = append(errs, validateJobSpec(&job.Spec)...)
	spec := &job.Spec
	if isIndexed(spec) && spec.Completions != nil && *spec.Completions > 0 {
		host := fmt.Sprintf("%s-%d", job.Name, *spec.Completions-1)
		if len(validation.IsDNS1123Label(host)) > 0 {
			errs = append(errs, field.Invalid(metadataPath.Child("name"), job.Name, fmt.Sprintf("will not able to create pod with invalid DNS label: %s", host)))
		}
	}
	return errs
}

func isIndexed(spec *batchv1.JobSpec) bool {
	return spec.CompletionMode != nil && *spec.CompletionMode == batchv1.IndexedCompletion
}

// validateGeneratedSelector checks that a job with a generated selector
// still carries the generated labels and selects them.
func validateGeneratedSelector(job *batchv1.Job, batchLabels bool) field.ErrorList {
	if job.Spec.ManualSelector != nil && *job.Spec.ManualSelector || job.Spec.Selector == nil {
		return nil
	}
	var errs field.ErrorList
	if job.UID == "" {
		errs = append(errs, field.Required(metadataPath.Child("uid"), ""))
	}
	tplMeta := specPath.Child("template", "metadata")
	expected := map[string]string{}
	want := []struct{ key, value string }{{legacyControllerUIDLabel, string(job.UID)}, {legacyJobNameLabel, job.Name}}
	if batchLabels {
		want = append(want, struct{ key, value string }{batchv1.ControllerUidLabel, string(job.UID)}, struct{ key, value string }{batchv1.JobNameLabel, job.Name})
	}
	for _, w := range want {
		errs = append(errs, validateHasLabel(job.Spec.Template.Labels, tplMeta, w.key, w.value)...)
		expected[w.key] = w.value
	}
	if sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector); err == nil && !sel.Matches(labels.Set(expected)) {
		errs = append(errs, field.Invalid(specPath.Child("selector"), job.Spec.Selector, "`selector` not auto-generated"))
	}
	return errs
}

func validateHasLabel(have map[string]string, fld *field.Path, key, value string) field.ErrorList {
	got, ok := have[key]
	if !ok {
		return field.ErrorList{field.Required(fld.Child("labels").Key(key), fmt.Sprintf("must be '%s'", value))}
	}
	if got != value {
		return field.ErrorList{field.Invalid(fld.Child("labels").Key(key), have, fmt.Sprintf("must be '%s'", value))}
	}
	return nil
}

func validateJobSpec(spec *batchv1.JobSpec) field.ErrorList {
	var errs field.ErrorList
	selPath := specPath.Child("selector")
	if spec.Selector == nil {
		errs = append(errs, field.Required(selPath, ""))
	} else {
		errs = append(errs, validateLabelSelector(spec.Selector, selPath)...)
	}
	if sel, err := metav1.LabelSelectorAsSelector(spec.Selector); err == nil && !sel.Matches(labels.Set(spec.Template.Labels)) {
		errs = append(errs, field.Invalid(specPath.Child("template", "metadata", "labels"), spec.Template.Labels, "`selector` does not match template `labels`"))
	}
	for _, f := range []struct {
		name  string
		value *int32
	}{
		{"parallelism", spec.Parallelism}, {"completions", spec.Completions}, {"backoffLimit", spec.BackoffLimit},
		{"ttlSecondsAfterFinished", spec.TTLSecondsAfterFinished}, {"backoffLimitPerIndex", spec.BackoffLimitPerIndex},
		{"maxFailedIndexes", spec.MaxFailedIndexes},
	} {
		if f.value != nil {
			errs = append(errs, validateNonnegative(int64(*f.value), specPath.Child(f.name))...)
		}
	}
	if spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, validateNonnegative(*spec.ActiveDeadlineSeconds, specPath.Child("activeDeadlineSeconds"))...)
	}
	errs = append(errs, validateJobModes(spec)...)
	tpl := specPath.Child("template")
	errs = append(errs, validatePodTemplateSpec(&spec.Template, tpl)...)
	if p := spec.Template.Spec.RestartPolicy; p != corev1.RestartPolicyOnFailure && p != corev1.RestartPolicyNever {
		errs = append(errs, field.NotSupported(tpl.Child("spec", "restartPolicy"), p, []string{string(corev1.RestartPolicyOnFailure), string(corev1.RestartPolicyNever)}))
	}
	if spec.PodFailurePolicy != nil && spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		errs = append(errs, field.Invalid(tpl.Child("spec", "restartPolicy"), spec.Template.Spec.RestartPolicy, "only \"Never\" is supported when podFailurePolicy is specified"))
	}
	return errs
}

// validateJobModes checks the completion mode and the settings that
// depend on it, and the pod replacement policy.
func validateJobModes(spec *batchv1.JobSpec) field.ErrorList {
	var errs field.ErrorList
	if m := spec.CompletionMode; m != nil && *m != batchv1.NonIndexedCompletion && *m != batchv1.IndexedCompletion {
		errs = append(errs, field.NotSupported(specPath.Child("completionMode"), *m, []batchv1.CompletionMode{batchv1.NonIndexedCompletion, batchv1.IndexedCompletion}))
	}
	if isIndexed(spec) {
		if spec.Completions == nil {
			errs = append(errs, field.Required(specPath.Child("completions"), fmt.Sprintf("when completion mode is %s", batchv1.IndexedCompletion)))
		}
		if spec.Parallelism != nil && *spec.Parallelism > maxParallelismIndexed {
			errs = append(errs, field.Invalid(specPath.Child("parallelism"), *spec.Parallelism, fmt.Sprintf("must be less than or equal to %d when completion mode is %s", maxParallelismIndexed, batchv1.IndexedCompletion)))
		}
	} else {
		if spec.BackoffLimitPerIndex != nil {
			errs = append(errs, field.Invalid(specPath.Child("backoffLimitPerIndex"), *spec.BackoffLimitPerIndex, "requires indexed completion mode"))
		}
		if spec.MaxFailedIndexes != nil {
			errs = append(errs, field.Invalid(specPath.Child("maxFailedIndexes"), *spec.MaxFailedIndexes, "requires indexed completion mode"))
		}
	}
	if p := spec.PodReplacementPolicy; p != nil && *p != batchv1.Failed && *p != batchv1.TerminatingOrFailed {
		errs = append(errs, field.NotSupported(specPath.Child("podReplacementPolicy"), *p, []batchv1.PodReplacementPolicy{batchv1.Failed, batchv1.TerminatingOrFailed}))
	}
	return errs
}

// validateJobUpdate keeps the selector, template, completion mode and
// completions of a job (an indexed job may scale completions together
// with parallelism).
func validateJobUpdate(job, old *batchv1.Job) field.ErrorList {
	_, oldHasBatchLabels := old.Spec.Template.Labels[batchv1.ControllerUidLabel]
	errs := validateJob(job, oldHasBatchLabels)
	errs = append(errs, validateObjectMetaUpdate(&job.ObjectMeta, &old.ObjectMeta)...)
	spec, oldSpec := &job.Spec, &old.Spec
	if !elasticIndexedScale(spec, oldSpec) {
		errs = append(errs, validateImmutable(spec.Completions, oldSpec.Completions, specPath.Child("completions"))...)
	}
	errs = append(errs, validateImmutable(spec.Selector, oldSpec.Selector, specPath.Child("selector"))...)
	errs = append(errs, validateImmutable(spec.Template, oldSpec.Template, specPath.Child("template"))...)
	errs = append(errs, validateImmutable(spec.CompletionMode, oldSpec.CompletionMode, specPath.Child("completionMode"))...)
	errs = append(errs, validateImmutable(spec.PodFailurePolicy, oldSpec.PodFailurePolicy, specPath.Child("podFailurePolicy"))...)
	errs = append(errs, validateImmutable(spec.BackoffLimitPerIndex, oldSpec.BackoffLimitPerIndex, specPath.Child("backoffLimitPerIndex"))...)
	errs = append(errs, validateImmutable(spec.ManagedBy, oldSpec.ManagedBy, specPath.Child("managedBy"))...)
	return append(errs, validateImmutable(spec.SuccessPolicy, oldSpec.SuccessPolicy, specPath.Child("successPolicy"))...)
}

// elasticIndexedScale reports an indexed job scaled by changing
// completions and parallelism to the same value.
func elasticIndexedScale(spec, old *batchv1.JobSpec) bool {
	if !isIndexed(spec) || !isIndexed(old) {
		return false
	}
	same := func(s *batchv1.JobSpec) bool {
		return s.Completions != nil && s.Parallelism != nil && *s.Completions == *s.Parallelism
	}
	return same(spec) && same(old)
}

func validateJobStatusUpdate(job, old *batchv1.Job) field.ErrorList {
	errs := validateObjectMetaUpdate(&job.ObjectMeta, &old.ObjectMeta)
	st := &job.Status
	counts := []replicaCount{
		{"active", int64(st.Active)}, {"succeeded", int64(st.Succeeded)}, {"failed", int64(st.Failed)},
	}
	if st.Ready != nil {
		counts = append(counts, replicaCount{"ready", int64(*st.Ready)})
	}
	if st.Terminating != nil {
		counts = append(counts, replicaCount{"terminating", int64(*st.Terminating)})
	}
	return append(errs, validateReplicaCounts(statusPath, counts)...)
}
