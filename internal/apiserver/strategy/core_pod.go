package strategy

import (
	"fmt"
	"math"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

func podStrategy() registry.Strategy {
	return typed[*corev1.Pod]{
		defaults:             defaultPod,
		prepareForCreate:     preparePodForCreate,
		validate:             validatePodCreate,
		validateUpdate:       validatePodUpdate,
		validateStatusUpdate: validatePodStatusUpdate,
	}.strategy()
}

// preparePodForCreate resets the status of a new pod: Pending, with the
// computed QoS class.
func preparePodForCreate(pod *corev1.Pod) {
	pod.Status = corev1.PodStatus{
		Phase:    corev1.PodPending,
		QOSClass: podQOS(&pod.Spec),
	}
	if len(pod.Spec.SchedulingGates) > 0 {
		pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
			Type:    corev1.PodScheduled,
			Status:  corev1.ConditionFalse,
			Reason:  corev1.PodReasonSchedulingGated,
			Message: "Scheduling is blocked due to non-empty scheduling gates",
		})
	}
}

// podQOS computes the QoS class of a pod from its cpu and memory requests
// and limits.
func podQOS(spec *corev1.PodSpec) corev1.PodQOSClass {
	if spec.Resources != nil && hasQOSResources(spec.Resources) {
		requests := qosResources(spec.Resources.Requests)
		limits := qosResources(spec.Resources.Limits)
		return qosClass(requests, limits, len(limits) == 2)
	}
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	guaranteed := true
	for _, c := range append(append([]corev1.Container{}, spec.Containers...), spec.InitContainers...) {
		addResources(requests, qosResources(c.Resources.Requests))
		lim := qosResources(c.Resources.Limits)
		addResources(limits, lim)
		if len(lim) != 2 {
			guaranteed = false
		}
	}
	return qosClass(requests, limits, guaranteed)
}

func qosClass(requests, limits corev1.ResourceList, guaranteed bool) corev1.PodQOSClass {
	if len(requests) == 0 && len(limits) == 0 {
		return corev1.PodQOSBestEffort
	}
	for name, req := range requests {
		if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
			guaranteed = false
		}
	}
	if guaranteed && len(requests) == len(limits) {
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// qosResources returns the positive cpu and memory quantities of list.
func qosResources(list corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := list[name]; ok && q.Sign() > 0 {
			out[name] = q.DeepCopy()
		}
	}
	return out
}

func hasQOSResources(r *corev1.ResourceRequirements) bool {
	return len(qosResources(r.Requests)) > 0 || len(qosResources(r.Limits)) > 0
}

func addResources(sum, add corev1.ResourceList) {
	for name, q := range add {
		total := q.DeepCopy()
		if prev, ok := sum[name]; ok {
			total.Add(prev)
		}
		sum[name] = total
	}
}

func validatePodCreate(pod *corev1.Pod) field.ErrorList {
	errs := validatePodMetadataAndSpec(pod)
	if len(pod.Spec.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(specPath.Child("ephemeralContainers"), "cannot be set on create"))
	}
	if pod.Spec.NodeName != "" && len(pod.Spec.SchedulingGates) != 0 {
		errs = append(errs, field.Forbidden(specPath.Child("nodeName"), "cannot be set until all schedulingGates have been cleared"))
	}
	return errs
}

func validatePodMetadataAndSpec(pod *corev1.Pod) field.ErrorList {
	errs := validateObjectMeta(&pod.ObjectMeta, true, nameIsDNSSubdomain)
	errs = append(errs, validatePodSpec(&pod.Spec, specPath, true)...)
	if pod.Spec.ServiceAccountName == "" {
		errs = append(errs, validateNoTokenProjection(pod.Spec.Volumes)...)
	}
	errs = append(errs, validateImageWhitespace(pod.Spec.Containers, specPath.Child("containers"))...)
	return append(errs, validateImageWhitespace(pod.Spec.InitContainers, specPath.Child("initContainers"))...)
}

func validateNoTokenProjection(volumes []corev1.Volume) field.ErrorList {
	var errs field.ErrorList
	for vi, v := range volumes {
		if v.Projected == nil {
			continue
		}
		for si, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil {
				fld := specPath.Child("volumes").Index(vi).Child("projected", "sources").Index(si).Child("serviceAccountToken")
				errs = append(errs, field.Forbidden(fld, "must not be specified when serviceAccountName is not set"))
			}
		}
	}
	return errs
}

func validateImageWhitespace(containers []corev1.Container, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, c := range containers {
		if len(c.Image) != len(strings.TrimSpace(c.Image)) {
			errs = append(errs, field.Invalid(fld.Index(i).Child("image"), c.Image, "must not have leading or trailing whitespace"))
		}
	}
	return errs
}

// updatablePodSpecFields names what a pod update may change, in the words
// of Kubernetes' error message.
var updatablePodSpecFields = []string{
	"`spec.containers[*].image`",
	"`spec.initContainers[*].image`",
	"`spec.activeDeadlineSeconds`",
	"`spec.tolerations` (only additions to existing tolerations)",
	"`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
}

// validatePodUpdate allows only the pod spec changes Kubernetes allows.
func validatePodUpdate(pod, old *corev1.Pod) field.ErrorList {
	errs := validateObjectMetaUpdate(&pod.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validatePodMetadataAndSpec(pod)...)
	for _, list := range []struct {
		name      string
		new, prev []corev1.Container
	}{
		{"containers", pod.Spec.Containers, old.Spec.Containers},
		{"initContainers", pod.Spec.InitContainers, old.Spec.InitContainers},
	} {
		cErrs, stop := validateContainerUpdates(list.new, list.prev, specPath.Child(list.name))
		errs = append(errs, cErrs...)
		if stop {
			return errs
		}
	}
	adsErrs, stop := validateActiveDeadlineUpdate(pod.Spec.ActiveDeadlineSeconds, old.Spec.ActiveDeadlineSeconds)
	errs = append(errs, adsErrs...)
	if stop {
		return errs
	}
	errs = append(errs, validateOnlyAddedTolerations(pod.Spec.Tolerations, old.Spec.Tolerations, specPath.Child("tolerations"))...)
	errs = append(errs, validateOnlyDeletedSchedulingGates(pod.Spec.SchedulingGates, old.Spec.SchedulingGates, specPath.Child("schedulingGates"))...)
	if apiequality.Semantic.DeepEqual(pod.Spec, old.Spec) {
		return errs
	}
	munged := mungePodSpec(&pod.Spec, &old.Spec)
	if !apiequality.Semantic.DeepEqual(*munged, old.Spec) {
		msg := fmt.Sprintf("pod updates may not change fields other than %s\n%v", strings.Join(updatablePodSpecFields, ","), specDiff(&old.Spec, munged))
		errs = append(errs, field.Forbidden(specPath, msg))
	}
	return errs
}

// specDiff describes how b differs from a, as a diff of their JSON.
func specDiff(a, b *corev1.PodSpec) string {
	return diff.Diff(a, b)
}

// mungePodSpec returns a copy of spec with the updatable fields taken from
// old, so that what remains different is forbidden.
func mungePodSpec(spec, old *corev1.PodSpec) *corev1.PodSpec {
	m := spec.DeepCopy()
	for i := range m.Containers {
		m.Containers[i].Image = old.Containers[i].Image
	}
	for i := range m.InitContainers {
		m.InitContainers[i].Image = old.InitContainers[i].Image
	}
	m.ActiveDeadlineSeconds = old.ActiveDeadlineSeconds
	m.SchedulingGates = old.SchedulingGates
	m.Tolerations = old.Tolerations
	if og, ng := old.TerminationGracePeriodSeconds, m.TerminationGracePeriodSeconds; og != nil && *og < 0 && ng != nil && *ng == 1 {
		m.TerminationGracePeriodSeconds = og
	}
	if len(old.SchedulingGates) > 0 {
		// A gated pod may still get scheduling directives.
		m.NodeSelector = old.NodeSelector
		if m.Affinity != nil || old.Affinity != nil {
			m.Affinity = old.Affinity
		}
	}
	return m
}

func validateContainerUpdates(containers, old []corev1.Container, fld *field.Path) (field.ErrorList, bool) {
	if len(containers) != len(old) {
		return field.ErrorList{field.Forbidden(fld, "pod updates may not add or remove containers")}, true
	}
	var errs field.ErrorList
	for i, c := range containers {
		if c.Image == "" {
			errs = append(errs, field.Required(fld.Index(i).Child("image"), ""))
		}
	}
	return errs, false
}

// validateActiveDeadlineUpdate allows setting the deadline or lowering it.
func validateActiveDeadlineUpdate(deadline, old *int64) (field.ErrorList, bool) {
	fld := specPath.Child("activeDeadlineSeconds")
	switch {
	case deadline == nil && old != nil:
		return field.ErrorList{field.Invalid(fld, deadline, "must not update from a positive integer to nil value")}, false
	case deadline == nil:
		return nil, false
	case *deadline < 0 || *deadline > math.MaxInt32:
		return field.ErrorList{field.Invalid(fld, *deadline, validation.InclusiveRangeError(0, math.MaxInt32))}, true
	case old != nil && *old < *deadline:
		return field.ErrorList{field.Invalid(fld, *deadline, "must be less than or equal to previous value")}, true
	}
	return nil, false
}

// validateOnlyAddedTolerations allows new tolerations and changed
// tolerationSeconds, nothing else.
func validateOnlyAddedTolerations(tolerations, old []corev1.Toleration, fld *field.Path) field.ErrorList {
	for _, o := range old {
		found := false
		for _, t := range tolerations {
			o.TolerationSeconds = t.TolerationSeconds
			if reflect.DeepEqual(o, t) {
				found = true
				break
			}
		}
		if !found {
			return field.ErrorList{field.Forbidden(fld, "existing toleration can not be modified except its tolerationSeconds")}
		}
	}
	return validateTolerations(tolerations, fld)
}

func validateOnlyDeletedSchedulingGates(gates, old []corev1.PodSchedulingGate, fld *field.Path) field.ErrorList {
	had := map[string]bool{}
	for _, g := range old {
		had[g.Name] = true
	}
	var errs field.ErrorList
	for i, g := range gates {
		if !had[g.Name] {
			errs = append(errs, field.Forbidden(fld.Index(i).Child("name"), fmt.Sprintf("only deletion is allowed, but found new scheduling gate '%s'", g.Name)))
		}
	}
	return errs
}

// validatePodStatusUpdate checks a /status write: metadata, that the node
// and QoS class do not change, and that the addresses are IPs.
func validatePodStatusUpdate(pod, old *corev1.Pod) field.ErrorList {
	errs := validateObjectMetaUpdate(&pod.ObjectMeta, &old.ObjectMeta)
	// Kubernetes reports condition types under metadata.
	errs = append(errs, validatePodConditions(pod.Status.Conditions, metadataPath.Child("conditions"))...)
	if pod.Spec.NodeName != old.Spec.NodeName {
		errs = append(errs, field.Forbidden(statusPath.Child("nodeName"), "may not be changed directly"))
	}
	if n := pod.Status.NominatedNodeName; n != old.Status.NominatedNodeName && n != "" {
		errs = append(errs, validateName(nameIsDNSSubdomain, n, statusPath.Child("nominatedNodeName"))...)
	}
	errs = append(errs, validateImmutable(pod.Status.QOSClass, old.Status.QOSClass, statusPath.Child("qosClass"))...)
	errs = append(errs, validateContainerStateTransition(pod.Status.ContainerStatuses, old.Status.ContainerStatuses, statusPath.Child("containerStatuses"), old.Spec.RestartPolicy)...)
	for i, ip := range pod.Status.PodIPs {
		errs = append(errs, validateIP(statusPath.Child("podIPs").Index(i), ip.IP)...)
	}
	for i, ip := range pod.Status.HostIPs {
		errs = append(errs, validateIP(statusPath.Child("hostIPs").Index(i), ip.IP)...)
	}
	if len(pod.Status.HostIPs) > 0 && pod.Status.HostIP != pod.Status.HostIPs[0].IP {
		errs = append(errs, field.Invalid(statusPath.Child("hostIPs").Index(0).Child("ip"), pod.Status.HostIPs[0].IP, "must be equal to `hostIP`"))
	}
	return errs
}

func validatePodConditions(conditions []corev1.PodCondition, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, c := range conditions {
		switch c.Type {
		case corev1.PodScheduled, corev1.PodReady, corev1.PodInitialized:
			continue
		}
		errs = append(errs, validateQualifiedName(string(c.Type), fld.Index(i).Child("Type"))...)
	}
	return errs
}

// validateContainerStateTransition forbids restarting a terminated
// container the restart policy does not restart.
func validateContainerStateTransition(statuses, old []corev1.ContainerStatus, fld *field.Path, policy corev1.RestartPolicy) field.ErrorList {
	if policy == corev1.RestartPolicyAlways {
		return nil
	}
	var errs field.ErrorList
	for i, o := range old {
		if o.State.Terminated == nil || (o.State.Terminated.ExitCode != 0 && policy == corev1.RestartPolicyOnFailure) {
			continue
		}
		for _, s := range statuses {
			if s.Name == o.Name && s.State.Terminated == nil {
				errs = append(errs, field.Forbidden(fld.Index(i).Child("state"), "may not be transitioned to non-terminated state"))
			}
		}
	}
	return errs
}
