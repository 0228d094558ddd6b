package strategy

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

func deploymentStrategy() registry.Strategy {
	return typed[*appsv1.Deployment]{
		defaults:         defaultDeployment,
		prepareForCreate: func(d *appsv1.Deployment) { d.Status = appsv1.DeploymentStatus{} },
		validate: func(d *appsv1.Deployment) field.ErrorList {
			return append(validateObjectMeta(&d.ObjectMeta, true, nameIsDNSSubdomain), validateDeploymentSpec(&d.Spec)...)
		},
		validateUpdate: func(d, old *appsv1.Deployment) field.ErrorList {
			errs := validateObjectMetaUpdate(&d.ObjectMeta, &old.ObjectMeta)
			errs = append(errs, validateDeploymentSpec(&d.Spec)...)
			return append(errs, validateImmutable(d.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
		},
		validateStatusUpdate: validateDeploymentStatusUpdate,
	}.strategy()
}

func defaultDeployment(d *appsv1.Deployment) {
	spec := &d.Spec
	if spec.Replicas == nil {
		spec.Replicas = ptrTo(int32(1))
	}
	if spec.Strategy.Type == "" {
		spec.Strategy.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	if spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType {
		if spec.Strategy.RollingUpdate == nil {
			spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		ru := spec.Strategy.RollingUpdate
		if ru.MaxUnavailable == nil {
			ru.MaxUnavailable = ptrTo(intstr.FromString("25%"))
		}
		if ru.MaxSurge == nil {
			ru.MaxSurge = ptrTo(intstr.FromString("25%"))
		}
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = ptrTo(int32(10))
	}
	if spec.ProgressDeadlineSeconds == nil {
		spec.ProgressDeadlineSeconds = ptrTo(int32(600))
	}
	defaultPodTemplate(&spec.Template)
}

func validateDeploymentSpec(spec *appsv1.DeploymentSpec) field.ErrorList {
	errs := validateReplicas(spec.Replicas, specPath.Child("replicas"))
	errs = append(errs, validateWorkloadTemplate(spec.Selector, &spec.Template, "deployment", "ReplicaSet")...)
	errs = append(errs, validateDeploymentStrategy(&spec.Strategy, specPath.Child("strategy"))...)
	errs = append(errs, validateNonnegative(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	if spec.RevisionHistoryLimit != nil {
		errs = append(errs, validateNonnegative(int64(*spec.RevisionHistoryLimit), specPath.Child("revisionHistoryLimit"))...)
	}
	if p := spec.ProgressDeadlineSeconds; p != nil {
		errs = append(errs, validateNonnegative(int64(*p), specPath.Child("progressDeadlineSeconds"))...)
		if *p <= spec.MinReadySeconds {
			errs = append(errs, field.Invalid(specPath.Child("progressDeadlineSeconds"), p, "must be greater than minReadySeconds"))
		}
	}
	return errs
}

func validateReplicas(replicas *int32, fld *field.Path) field.ErrorList {
	if replicas == nil {
		return nil
	}
	return validateNonnegative(int64(*replicas), fld)
}

// validateWorkloadTemplate validates the selector of a Deployment,
// ReplicaSet or DaemonSet and its pod template, which must be selected by
// it and restart Always. kind names the workload in messages, podOwner the
// kind Kubernetes names in the activeDeadlineSeconds message.
func validateWorkloadTemplate(sel *metav1.LabelSelector, t *corev1.PodTemplateSpec, kind, podOwner string) field.ErrorList {
	selPath := specPath.Child("selector")
	tplPath := specPath.Child("template")
	var errs field.ErrorList
	if sel == nil {
		errs = append(errs, field.Required(selPath, ""))
	} else {
		errs = append(errs, validateLabelSelector(sel, selPath)...)
		if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
			errs = append(errs, field.Invalid(selPath, sel, "empty selector is invalid for "+kind))
		}
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return append(errs, field.Invalid(selPath, sel, "invalid label selector"))
	}
	if !selector.Empty() && !selector.Matches(labels.Set(t.Labels)) {
		errs = append(errs, field.Invalid(tplPath.Child("metadata", "labels"), t.Labels, "`selector` does not match template `labels`"))
	}
	errs = append(errs, validatePodTemplateSpec(t, tplPath)...)
	if t.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		errs = append(errs, field.NotSupported(tplPath.Child("spec", "restartPolicy"), t.Spec.RestartPolicy, []string{string(corev1.RestartPolicyAlways)}))
	}
	if t.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Forbidden(tplPath.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in "+podOwner+" is not Supported"))
	}
	return errs
}

// validatePodTemplateSpec validates a pod template found at fld.
func validatePodTemplateSpec(t *corev1.PodTemplateSpec, fld *field.Path) field.ErrorList {
	errs := validateLabels(t.Labels, fld.Child("labels"))
	errs = append(errs, validateAnnotations(t.Annotations, fld.Child("annotations"))...)
	errs = append(errs, validatePodSpec(&t.Spec, fld.Child("spec"), false)...)
	if len(t.Spec.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(fld.Child("spec", "ephemeralContainers"), "ephemeral containers not allowed in pod template"))
	}
	return errs
}

func validateDeploymentStrategy(s *appsv1.DeploymentStrategy, fld *field.Path) field.ErrorList {
	switch s.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if s.RollingUpdate != nil {
			return field.ErrorList{field.Forbidden(fld.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'")}
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		if s.RollingUpdate == nil {
			return field.ErrorList{field.Required(fld.Child("rollingUpdate"), "this should be defaulted and never be nil")}
		}
		ru := s.RollingUpdate
		unavailable, surge := intOrZero(ru.MaxUnavailable), intOrZero(ru.MaxSurge)
		errs := validatePositiveIntOrPercent(unavailable, fld.Child("rollingUpdate", "maxUnavailable"))
		errs = append(errs, validatePositiveIntOrPercent(surge, fld.Child("rollingUpdate", "maxSurge"))...)
		if intOrPercentValue(unavailable) == 0 && intOrPercentValue(surge) == 0 {
			errs = append(errs, field.Invalid(fld.Child("rollingUpdate", "maxUnavailable"), unavailable, "may not be 0 when `maxSurge` is 0"))
		}
		return append(errs, notMoreThan100Percent(unavailable, fld.Child("rollingUpdate", "maxUnavailable"))...)
	default:
		valid := []string{string(appsv1.RecreateDeploymentStrategyType), string(appsv1.RollingUpdateDeploymentStrategyType)}
		return field.ErrorList{field.NotSupported(fld, s, valid)}
	}
	return nil
}

func intOrZero(v *intstr.IntOrString) intstr.IntOrString {
	if v == nil {
		return intstr.FromInt32(0)
	}
	return *v
}

func validatePositiveIntOrPercent(v intstr.IntOrString, fld *field.Path) field.ErrorList {
	switch v.Type {
	case intstr.String:
		return messages(fld, v, validation.IsValidPercent(v.StrVal))
	case intstr.Int:
		return validateNonnegative(int64(v.IntValue()), fld)
	}
	return field.ErrorList{field.Invalid(fld, v, "must be an integer or percentage (e.g '5%%')")}
}

// percentValue returns the number of a valid percentage such as "25%".
func percentValue(v intstr.IntOrString) (int, bool) {
	if v.Type != intstr.String || len(validation.IsValidPercent(v.StrVal)) != 0 {
		return 0, false
	}
	n, _ := strconv.Atoi(v.StrVal[:len(v.StrVal)-1])
	return n, true
}

func intOrPercentValue(v intstr.IntOrString) int {
	if n, ok := percentValue(v); ok {
		return n
	}
	return v.IntValue()
}

func notMoreThan100Percent(v intstr.IntOrString, fld *field.Path) field.ErrorList {
	if n, ok := percentValue(v); ok && n > 100 {
		return field.ErrorList{field.Invalid(fld, v, "must not be greater than 100%")}
	}
	return nil
}

func validateDeploymentStatusUpdate(d, old *appsv1.Deployment) field.ErrorList {
	errs := validateObjectMetaUpdate(&d.ObjectMeta, &old.ObjectMeta)
	st := &d.Status
	errs = append(errs, validateReplicaCounts(statusPath, []replicaCount{
		{"observedGeneration", st.ObservedGeneration}, {"replicas", int64(st.Replicas)},
		{"updatedReplicas", int64(st.UpdatedReplicas)}, {"readyReplicas", int64(st.ReadyReplicas)},
		{"availableReplicas", int64(st.AvailableReplicas)}, {"unavailableReplicas", int64(st.UnavailableReplicas)},
	})...)
	errs = append(errs, validateNotAbove(statusPath, st.Replicas, counter{"updatedReplicas", st.UpdatedReplicas}, counter{"readyReplicas", st.ReadyReplicas}, counter{"availableReplicas", st.AvailableReplicas})...)
	if st.AvailableReplicas > st.ReadyReplicas {
		errs = append(errs, field.Invalid(statusPath.Child("availableReplicas"), st.AvailableReplicas, "cannot be greater than readyReplicas"))
	}
	return append(errs, validateCollisionCount(st.CollisionCount, old.Status.CollisionCount)...)
}

func replicaSetStrategy() registry.Strategy {
	return typed[*appsv1.ReplicaSet]{
		defaults: func(rs *appsv1.ReplicaSet) {
			if rs.Spec.Replicas == nil {
				rs.Spec.Replicas = ptrTo(int32(1))
			}
			defaultPodTemplate(&rs.Spec.Template)
		},
		prepareForCreate: func(rs *appsv1.ReplicaSet) { rs.Status = appsv1.ReplicaSetStatus{} },
		validate: func(rs *appsv1.ReplicaSet) field.ErrorList {
			return append(validateObjectMeta(&rs.ObjectMeta, true, nameIsDNSSubdomain), validateReplicaSetSpec(&rs.Spec)...)
		},
		validateUpdate: func(rs, old *appsv1.ReplicaSet) field.ErrorList {
			errs := validateObjectMetaUpdate(&rs.ObjectMeta, &old.ObjectMeta)
			errs = append(errs, validateReplicaSetSpec(&rs.Spec)...)
			return append(errs, validateImmutable(rs.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
		},
		validateStatusUpdate: validateReplicaSetStatusUpdate,
	}.strategy()
}

func validateReplicaSetSpec(spec *appsv1.ReplicaSetSpec) field.ErrorList {
	errs := validateReplicas(spec.Replicas, specPath.Child("replicas"))
	errs = append(errs, validateNonnegative(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	// Kubernetes names deployments in the empty-selector message of
	// replica sets too.
	return append(errs, validateWorkloadTemplate(spec.Selector, &spec.Template, "deployment", "ReplicaSet")...)
}

func validateReplicaSetStatusUpdate(rs, old *appsv1.ReplicaSet) field.ErrorList {
	errs := validateObjectMetaUpdate(&rs.ObjectMeta, &old.ObjectMeta)
	st := &rs.Status
	errs = append(errs, validateReplicaCounts(statusPath, []replicaCount{
		{"replicas", int64(st.Replicas)}, {"fullyLabeledReplicas", int64(st.FullyLabeledReplicas)},
		{"readyReplicas", int64(st.ReadyReplicas)}, {"availableReplicas", int64(st.AvailableReplicas)},
		{"observedGeneration", st.ObservedGeneration},
	})...)
	errs = append(errs, validateNotAbove(statusPath, st.Replicas, counter{"fullyLabeledReplicas", st.FullyLabeledReplicas}, counter{"readyReplicas", st.ReadyReplicas}, counter{"availableReplicas", st.AvailableReplicas})...)
	if st.AvailableReplicas > st.ReadyReplicas {
		errs = append(errs, field.Invalid(statusPath.Child("availableReplicas"), st.AvailableReplicas, "cannot be greater than readyReplicas"))
	}
	return errs
}

// replicaCount is a named status counter that may not be negative.
type replicaCount struct {
	name  string
	value int64
}

func validateReplicaCounts(fld *field.Path, counts []replicaCount) field.ErrorList {
	var errs field.ErrorList
	for _, c := range counts {
		errs = append(errs, validateNonnegative(c.value, fld.Child(c.name))...)
	}
	return errs
}

// counter is a named status counter bounded by status.replicas.
type counter struct {
	name  string
	value int32
}

func validateNotAbove(fld *field.Path, replicas int32, counters ...counter) field.ErrorList {
	var errs field.ErrorList
	for _, c := range counters {
		if c.value > replicas {
			errs = append(errs, field.Invalid(fld.Child(c.name), c.value, "cannot be greater than status.replicas"))
		}
	}
	return errs
}

func validateCollisionCount(count, old *int32) field.ErrorList {
	var errs field.ErrorList
	if count != nil {
		errs = append(errs, validateNonnegative(int64(*count), statusPath.Child("collisionCount"))...)
	}
	if old != nil && (count == nil || *count < *old) {
		value := int32(0)
		if count != nil {
			value = *count
		}
		errs = append(errs, field.Invalid(statusPath.Child("collisionCount"), value, "cannot be decremented"))
	}
	return errs
}

func daemonSetStrategy() registry.Strategy {
	return typed[*appsv1.DaemonSet]{
		defaults:         defaultDaemonSet,
		prepareForCreate: func(ds *appsv1.DaemonSet) { ds.Status = appsv1.DaemonSetStatus{} },
		validate: func(ds *appsv1.DaemonSet) field.ErrorList {
			return append(validateObjectMeta(&ds.ObjectMeta, true, nameIsDNSSubdomain), validateDaemonSetSpec(&ds.Spec)...)
		},
		validateUpdate: func(ds, old *appsv1.DaemonSet) field.ErrorList {
			errs := validateObjectMetaUpdate(&ds.ObjectMeta, &old.ObjectMeta)
			errs = append(errs, validateDaemonSetSpec(&ds.Spec)...)
			return append(errs, validateImmutable(ds.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
		},
		validateStatusUpdate: validateDaemonSetStatusUpdate,
	}.strategy()
}

func defaultDaemonSet(ds *appsv1.DaemonSet) {
	spec := &ds.Spec
	if spec.UpdateStrategy.Type == "" {
		spec.UpdateStrategy.Type = appsv1.RollingUpdateDaemonSetStrategyType
	}
	if spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		if spec.UpdateStrategy.RollingUpdate == nil {
			spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{}
		}
		ru := spec.UpdateStrategy.RollingUpdate
		if ru.MaxUnavailable == nil {
			ru.MaxUnavailable = ptrTo(intstr.FromInt32(1))
		}
		if ru.MaxSurge == nil {
			ru.MaxSurge = ptrTo(intstr.FromInt32(0))
		}
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = ptrTo(int32(10))
	}
	defaultPodTemplate(&spec.Template)
}

func validateDaemonSetSpec(spec *appsv1.DaemonSetSpec) field.ErrorList {
	errs := validateWorkloadTemplate(spec.Selector, &spec.Template, "daemonset", "DaemonSet")
	errs = append(errs, validateNonnegative(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	errs = append(errs, validateDaemonSetUpdateStrategy(&spec.UpdateStrategy, specPath.Child("updateStrategy"))...)
	if spec.RevisionHistoryLimit != nil {
		errs = append(errs, validateNonnegative(int64(*spec.RevisionHistoryLimit), specPath.Child("revisionHistoryLimit"))...)
	}
	return errs
}

// validateDaemonSetUpdateStrategy requires exactly one of maxSurge and
// maxUnavailable to be non-zero for rolling updates.
func validateDaemonSetUpdateStrategy(s *appsv1.DaemonSetUpdateStrategy, fld *field.Path) field.ErrorList {
	switch s.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
		return nil
	case appsv1.RollingUpdateDaemonSetStrategyType:
	default:
		valid := []string{string(appsv1.RollingUpdateDaemonSetStrategyType), string(appsv1.OnDeleteDaemonSetStrategyType)}
		return field.ErrorList{field.NotSupported(fld, s, valid)}
	}
	if s.RollingUpdate == nil {
		return field.ErrorList{field.Required(fld.Child("rollingUpdate"), "")}
	}
	fld = fld.Child("rollingUpdate")
	unavailable, surge := intOrZero(s.RollingUpdate.MaxUnavailable), intOrZero(s.RollingUpdate.MaxSurge)
	errs := validatePositiveIntOrPercent(unavailable, fld.Child("maxUnavailable"))
	errs = append(errs, validatePositiveIntOrPercent(surge, fld.Child("maxSurge"))...)
	errs = append(errs, notMoreThan100Percent(unavailable, fld.Child("maxUnavailable"))...)
	errs = append(errs, notMoreThan100Percent(surge, fld.Child("maxSurge"))...)
	hasUnavailable, hasSurge := intOrPercentValue(unavailable) != 0, intOrPercentValue(surge) != 0
	switch {
	case hasUnavailable && hasSurge:
		errs = append(errs, field.Invalid(fld.Child("maxSurge"), s.RollingUpdate.MaxSurge, "may not be set when maxUnavailable is non-zero"))
	case !hasUnavailable && !hasSurge:
		errs = append(errs, field.Required(fld.Child("maxUnavailable"), "cannot be 0 when maxSurge is 0"))
	}
	return errs
}

func validateDaemonSetStatusUpdate(ds, old *appsv1.DaemonSet) field.ErrorList {
	errs := validateObjectMetaUpdate(&ds.ObjectMeta, &old.ObjectMeta)
	st := &ds.Status
	errs = append(errs, validateReplicaCounts(statusPath, []replicaCount{
		{"currentNumberScheduled", int64(st.CurrentNumberScheduled)}, {"numberMisscheduled", int64(st.NumberMisscheduled)},
		{"desiredNumberScheduled", int64(st.DesiredNumberScheduled)}, {"numberReady", int64(st.NumberReady)},
		{"observedGeneration", st.ObservedGeneration}, {"updatedNumberScheduled", int64(st.UpdatedNumberScheduled)},
		{"numberAvailable", int64(st.NumberAvailable)}, {"numberUnavailable", int64(st.NumberUnavailable)},
	})...)
	return append(errs, validateCollisionCount(st.CollisionCount, old.Status.CollisionCount)...)
}
