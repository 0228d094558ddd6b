package strategy

import (
	"fmt"
	"math"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validatePodSpec validates a pod spec found at fld: spec of a Pod when
// isPod, spec.template.spec (or similar) of a workload otherwise.
func validatePodSpec(spec *corev1.PodSpec, fld *field.Path, isPod bool) field.ErrorList {
	var errs field.ErrorList
	if spec.TerminationGracePeriodSeconds == nil {
		errs = append(errs, field.Required(fld.Child("terminationGracePeriodSeconds"), ""))
	}
	grace := spec.TerminationGracePeriodSeconds
	vols, vErrs := validateVolumes(spec.Volumes, fld.Child("volumes"))
	errs = append(errs, vErrs...)
	errs = append(errs, validateContainers(spec.Containers, vols, grace, fld.Child("containers"))...)
	errs = append(errs, validateInitContainers(spec.InitContainers, spec.Containers, vols, grace, fld.Child("initContainers"))...)
	errs = append(errs, validateHostNetworkPorts(spec, fld, isPod)...)
	errs = append(errs, validateRestartPolicy(spec.RestartPolicy, fld.Child("restartPolicy"))...)
	errs = append(errs, validateDNSPolicy(spec.DNSPolicy, fld.Child("dnsPolicy"))...)
	errs = append(errs, validateLabels(spec.NodeSelector, fld.Child("nodeSelector"))...)
	errs = append(errs, validatePodSecurityContext(spec, fld.Child("securityContext"))...)
	errs = append(errs, validateImagePullSecrets(spec.ImagePullSecrets, fld.Child("imagePullSecrets"))...)
	errs = append(errs, validateAffinity(spec.Affinity, fld.Child("affinity"))...)
	errs = append(errs, validatePodDNSConfig(spec.DNSConfig, spec.DNSPolicy, fld.Child("dnsConfig"))...)
	errs = append(errs, validateReadinessGates(spec.ReadinessGates, fld.Child("readinessGates"))...)
	errs = append(errs, validateSchedulingGates(spec.SchedulingGates, fld.Child("schedulingGates"))...)
	errs = append(errs, validateTopologySpreadConstraints(spec.TopologySpreadConstraints, fld.Child("topologySpreadConstraints"))...)
	errs = append(errs, validatePodSpecNames(spec, fld)...)
	if spec.ActiveDeadlineSeconds != nil {
		if v := *spec.ActiveDeadlineSeconds; v < 1 || v > math.MaxInt32 {
			errs = append(errs, field.Invalid(fld.Child("activeDeadlineSeconds"), v, validation.InclusiveRangeError(1, math.MaxInt32)))
		}
	}
	if len(spec.Tolerations) > 0 {
		errs = append(errs, validateTolerations(spec.Tolerations, fld.Child("tolerations"))...)
	}
	for i, alias := range spec.HostAliases {
		errs = append(errs, validateIP(fld.Child("hostAliases").Index(i).Child("ip"), alias.IP)...)
		for j, host := range alias.Hostnames {
			errs = append(errs, validateDNS1123Subdomain(host, fld.Child("hostAliases").Index(i).Child("hostnames").Index(j))...)
		}
	}
	if spec.PreemptionPolicy != nil {
		errs = append(errs, validatePreemptionPolicy(*spec.PreemptionPolicy, fld.Child("preemptionPolicy"))...)
	}
	errs = append(errs, validateResourceList(spec.Overhead, fld.Child("overhead"))...)
	if spec.OS != nil {
		if name := spec.OS.Name; name != corev1.Linux && name != corev1.Windows {
			errs = append(errs, field.NotSupported(fld.Child("os").Child("name"), name, []corev1.OSName{corev1.Linux, corev1.Windows}))
		}
	}
	return errs
}

// validatePodSpecNames validates the fields of a pod spec that name other
// objects or the pod's own host name.
func validatePodSpecNames(spec *corev1.PodSpec, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.ServiceAccountName != "" {
		errs = append(errs, validateName(nameIsDNSSubdomain, spec.ServiceAccountName, fld.Child("serviceAccountName"))...)
	}
	if spec.NodeName != "" {
		errs = append(errs, validateName(nameIsDNSSubdomain, spec.NodeName, fld.Child("nodeName"))...)
	}
	if spec.Hostname != "" {
		errs = append(errs, validateDNS1123Label(spec.Hostname, fld.Child("hostname"))...)
	}
	if spec.Subdomain != "" {
		errs = append(errs, validateDNS1123Label(spec.Subdomain, fld.Child("subdomain"))...)
	}
	if spec.PriorityClassName != "" {
		errs = append(errs, validateName(nameIsDNSSubdomain, spec.PriorityClassName, fld.Child("priorityClassName"))...)
	}
	if spec.RuntimeClassName != nil {
		errs = append(errs, validateName(nameIsDNSSubdomain, *spec.RuntimeClassName, fld.Child("runtimeClassName"))...)
	}
	return errs
}

func validateRestartPolicy(policy corev1.RestartPolicy, fld *field.Path) field.ErrorList {
	switch policy {
	case corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever:
		return nil
	case "":
		return field.ErrorList{field.Required(fld, "")}
	}
	valid := []corev1.RestartPolicy{corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}
	return field.ErrorList{field.NotSupported(fld, policy, valid)}
}

func validateDNSPolicy(policy corev1.DNSPolicy, fld *field.Path) field.ErrorList {
	switch policy {
	case corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone:
		return nil
	case "":
		return field.ErrorList{field.Required(fld, "")}
	}
	valid := []corev1.DNSPolicy{corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone}
	return field.ErrorList{field.NotSupported(fld, policy, valid)}
}

func validatePreemptionPolicy(policy corev1.PreemptionPolicy, fld *field.Path) field.ErrorList {
	switch policy {
	case corev1.PreemptLowerPriority, corev1.PreemptNever:
		return nil
	case "":
		return field.ErrorList{field.Required(fld, "")}
	}
	return field.ErrorList{field.NotSupported(fld, policy, []corev1.PreemptionPolicy{corev1.PreemptLowerPriority, corev1.PreemptNever})}
}

// Limits of the DNS configuration, from libc's resolver.
const (
	maxDNSNameservers     = 3
	maxDNSSearchPaths     = 32
	maxDNSSearchListChars = 2048
)

func validatePodDNSConfig(cfg *corev1.PodDNSConfig, policy corev1.DNSPolicy, fld *field.Path) field.ErrorList {
	if policy == corev1.DNSNone {
		if cfg == nil {
			return field.ErrorList{field.Required(fld, fmt.Sprintf("must provide `dnsConfig` when `dnsPolicy` is %s", corev1.DNSNone))}
		}
		if len(cfg.Nameservers) == 0 {
			return field.ErrorList{field.Required(fld.Child("nameservers"), fmt.Sprintf("must provide at least one DNS nameserver when `dnsPolicy` is %s", corev1.DNSNone))}
		}
	}
	if cfg == nil {
		return nil
	}
	var errs field.ErrorList
	if len(cfg.Nameservers) > maxDNSNameservers {
		errs = append(errs, field.Invalid(fld.Child("nameservers"), cfg.Nameservers, fmt.Sprintf("must not have more than %v nameservers", maxDNSNameservers)))
	}
	for i, ns := range cfg.Nameservers {
		errs = append(errs, validateIP(fld.Child("nameservers").Index(i), ns)...)
	}
	if len(cfg.Searches) > maxDNSSearchPaths {
		errs = append(errs, field.Invalid(fld.Child("searches"), cfg.Searches, fmt.Sprintf("must not have more than %v search paths", maxDNSSearchPaths)))
	}
	if len(strings.Join(cfg.Searches, " ")) > maxDNSSearchListChars {
		errs = append(errs, field.Invalid(fld.Child("searches"), cfg.Searches, fmt.Sprintf("must not have more than %v characters (including spaces) in the search list", maxDNSSearchListChars)))
	}
	for i, search := range cfg.Searches {
		if search == "." {
			continue
		}
		search = strings.TrimSuffix(search, ".")
		errs = append(errs, messages(fld.Child("searches").Index(i), search, validation.IsDNS1123SubdomainWithUnderscore(search))...)
	}
	for i, opt := range cfg.Options {
		if opt.Name == "" {
			errs = append(errs, field.Required(fld.Child("options").Index(i), "must not be empty"))
		}
	}
	return errs
}

// validateHostNetworkPorts requires host ports to equal container ports on
// the host network; templates may leave them 0 to be defaulted.
func validateHostNetworkPorts(spec *corev1.PodSpec, fld *field.Path, isPod bool) field.ErrorList {
	if !spec.HostNetwork {
		return nil
	}
	var errs field.ErrorList
	for i, c := range spec.Containers {
		for j, p := range c.Ports {
			if (isPod || p.HostPort != 0) && p.HostPort != p.ContainerPort {
				fldPort := fld.Child("containers").Index(i).Child("ports").Index(j).Child("hostPort")
				errs = append(errs, field.Invalid(fldPort, p.HostPort, "must match `containerPort` when `hostNetwork` is true"))
			}
		}
	}
	return errs
}

func validatePodSecurityContext(spec *corev1.PodSpec, fld *field.Path) field.ErrorList {
	sc := spec.SecurityContext
	if sc == nil {
		return nil
	}
	var errs field.ErrorList
	if sc.FSGroup != nil {
		errs = append(errs, messages(fld.Child("fsGroup"), *sc.FSGroup, validation.IsValidGroupID(*sc.FSGroup))...)
	}
	if sc.RunAsUser != nil {
		errs = append(errs, messages(fld.Child("runAsUser"), *sc.RunAsUser, validation.IsValidUserID(*sc.RunAsUser))...)
	}
	if sc.RunAsGroup != nil {
		errs = append(errs, messages(fld.Child("runAsGroup"), *sc.RunAsGroup, validation.IsValidGroupID(*sc.RunAsGroup))...)
	}
	for i, gid := range sc.SupplementalGroups {
		errs = append(errs, messages(fld.Child("supplementalGroups").Index(i), gid, validation.IsValidGroupID(gid))...)
	}
	if spec.ShareProcessNamespace != nil && *spec.ShareProcessNamespace && spec.HostPID {
		errs = append(errs, field.Invalid(fld.Child("shareProcessNamespace"), *spec.ShareProcessNamespace, "ShareProcessNamespace and HostPID cannot both be enabled"))
	}
	seen := map[string]bool{}
	for i, s := range sc.Sysctls {
		fldName := fld.Child("sysctls").Index(i).Child("name")
		switch {
		case s.Name == "":
			errs = append(errs, field.Required(fldName, ""))
		case seen[s.Name]:
			errs = append(errs, field.Duplicate(fldName, s.Name))
		}
		seen[s.Name] = true
	}
	if p := sc.FSGroupChangePolicy; p != nil && *p != corev1.FSGroupChangeOnRootMismatch && *p != corev1.FSGroupChangeAlways {
		errs = append(errs, field.NotSupported(fld.Child("fsGroupChangePolicy"), *p, []corev1.PodFSGroupChangePolicy{corev1.FSGroupChangeAlways, corev1.FSGroupChangeOnRootMismatch}))
	}
	return append(errs, validateSeccompProfile(sc.SeccompProfile, fld.Child("seccompProfile"))...)
}

func validateSeccompProfile(p *corev1.SeccompProfile, fld *field.Path) field.ErrorList {
	if p == nil {
		return nil
	}
	switch p.Type {
	case corev1.SeccompProfileTypeLocalhost:
		if p.LocalhostProfile == nil {
			return field.ErrorList{field.Required(fld.Child("localhostProfile"), "must be set when seccomp type is Localhost")}
		}
	case corev1.SeccompProfileTypeRuntimeDefault, corev1.SeccompProfileTypeUnconfined:
		if p.LocalhostProfile != nil {
			return field.ErrorList{field.Invalid(fld.Child("localhostProfile"), p.LocalhostProfile, "can only be set when seccomp type is Localhost")}
		}
	case "":
		return field.ErrorList{field.Required(fld.Child("type"), "")}
	default:
		valid := []corev1.SeccompProfileType{corev1.SeccompProfileTypeLocalhost, corev1.SeccompProfileTypeRuntimeDefault, corev1.SeccompProfileTypeUnconfined}
		return field.ErrorList{field.NotSupported(fld.Child("type"), p.Type, valid)}
	}
	return nil
}

func validateImagePullSecrets(secrets []corev1.LocalObjectReference, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, s := range secrets {
		if s.Name == "" {
			errs = append(errs, field.Required(fld.Index(i).Child("name"), ""))
		}
	}
	return errs
}

func validateReadinessGates(gates []corev1.PodReadinessGate, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, g := range gates {
		errs = append(errs, validateQualifiedName(string(g.ConditionType), fld.Index(i).Child("conditionType"))...)
	}
	return errs
}

func validateSchedulingGates(gates []corev1.PodSchedulingGate, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, g := range gates {
		errs = append(errs, validateQualifiedName(g.Name, fld.Index(i))...)
		if seen[g.Name] {
			errs = append(errs, field.Duplicate(fld.Index(i), g.Name))
		}
		seen[g.Name] = true
	}
	return errs
}
