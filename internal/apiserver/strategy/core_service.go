package strategy

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

func serviceStrategy() registry.Strategy {
	return typed[*corev1.Service]{
		defaults:             defaultService,
		prepareForCreate:     func(s *corev1.Service) { s.Status = corev1.ServiceStatus{} },
		prepareForUpdate:     keepServiceAllocations,
		validate:             validateService,
		validateUpdate:       validateServiceUpdate,
		validateStatusUpdate: validateServiceStatusUpdate,
	}.strategy()
}

// defaultService applies the v1 Service defaults, keeps clusterIP and
// clusterIPs in step, and fills the IP family fields the way Kubernetes'
// allocator does on a single-stack IPv4 cluster. IPs themselves are
// allocated by the server.
func defaultService(svc *corev1.Service) {
	spec := &svc.Spec
	defaultSessionAffinity(spec)
	if spec.Type == "" {
		spec.Type = corev1.ServiceTypeClusterIP
	}
	for i := range spec.Ports {
		p := &spec.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if p.TargetPort == intstr.FromInt32(0) || p.TargetPort == intstr.FromString("") {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
	if externallyAccessible(svc) && spec.ExternalTrafficPolicy == "" {
		spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	if spec.InternalTrafficPolicy == nil && spec.Type != corev1.ServiceTypeExternalName {
		spec.InternalTrafficPolicy = ptrTo(corev1.ServiceInternalTrafficPolicyCluster)
	}
	if spec.Type == corev1.ServiceTypeLoadBalancer {
		if spec.AllocateLoadBalancerNodePorts == nil {
			spec.AllocateLoadBalancerNodePorts = ptrTo(true)
		}
		for i, ing := range svc.Status.LoadBalancer.Ingress {
			if ing.IP != "" && ing.IPMode == nil {
				svc.Status.LoadBalancer.Ingress[i].IPMode = ptrTo(corev1.LoadBalancerIPModeVIP)
			}
		}
	}
	if spec.ClusterIP != "" && len(spec.ClusterIPs) == 0 {
		spec.ClusterIPs = []string{spec.ClusterIP}
	} else if spec.ClusterIP == "" && len(spec.ClusterIPs) > 0 {
		spec.ClusterIP = spec.ClusterIPs[0]
	}
	if spec.Type != corev1.ServiceTypeExternalName {
		defaultIPFamilies(spec)
	}
}

func defaultSessionAffinity(spec *corev1.ServiceSpec) {
	if spec.SessionAffinity == "" {
		spec.SessionAffinity = corev1.ServiceAffinityNone
	}
	switch spec.SessionAffinity {
	case corev1.ServiceAffinityNone:
		spec.SessionAffinityConfig = nil
	case corev1.ServiceAffinityClientIP:
		if c := spec.SessionAffinityConfig; c == nil || c.ClientIP == nil || c.ClientIP.TimeoutSeconds == nil {
			spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{
				ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptrTo(corev1.DefaultClientIPServiceAffinitySeconds)},
			}
		}
	}
}

// defaultIPFamilies infers families from the cluster IPs and defaults the
// policy: headless services without a selector may serve both families.
func defaultIPFamilies(spec *corev1.ServiceSpec) {
	for i, ip := range spec.ClusterIPs {
		if ip == corev1.ClusterIPNone {
			break
		}
		if i >= len(spec.IPFamilies) {
			family := corev1.IPv4Protocol
			if isIPv6(ip) {
				family = corev1.IPv6Protocol
			}
			spec.IPFamilies = append(spec.IPFamilies, family)
		}
	}
	if spec.IPFamilyPolicy == nil && len(spec.IPFamilies) == 2 {
		spec.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicyRequireDualStack)
	}
	if spec.ClusterIP == corev1.ClusterIPNone && len(spec.Selector) == 0 && spec.IPFamilyPolicy == nil {
		spec.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicyRequireDualStack)
	}
	if spec.IPFamilyPolicy == nil {
		spec.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicySingleStack)
	}
	if len(spec.IPFamilies) == 0 {
		spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	}
}

func externallyAccessible(svc *corev1.Service) bool {
	t := svc.Spec.Type
	return t == corev1.ServiceTypeLoadBalancer || t == corev1.ServiceTypeNodePort ||
		(t == corev1.ServiceTypeClusterIP && len(svc.Spec.ExternalIPs) > 0)
}

func isHeadless(svc *corev1.Service) bool {
	return len(svc.Spec.ClusterIPs) == 1 && svc.Spec.ClusterIPs[0] == corev1.ClusterIPNone
}

var (
	serviceTypes = []corev1.ServiceType{
		corev1.ServiceTypeClusterIP, corev1.ServiceTypeExternalName, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort,
	}
	sessionAffinities      = []corev1.ServiceAffinity{corev1.ServiceAffinityClientIP, corev1.ServiceAffinityNone}
	trafficPolicies        = []corev1.ServiceExternalTrafficPolicy{corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal}
	internalPolicies       = []corev1.ServiceInternalTrafficPolicy{corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal}
	ipFamilies             = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	ipFamilyPolicies       = []corev1.IPFamilyPolicy{corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack, corev1.IPFamilyPolicySingleStack}
	maxClientIPAffinitySec = int32(86400)
)

// validateService validates a service as Kubernetes' ValidateService
// does, except that node ports and health check ports, allocated by the
// server after validation, may still be unset.
func validateService(svc *corev1.Service) field.ErrorList {
	spec := &svc.Spec
	errs := validateObjectMeta(&svc.ObjectMeta, true, nameIsDNS1035Label)
	if len(spec.Ports) == 0 && !isHeadless(svc) && spec.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, field.Required(specPath.Child("ports"), ""))
	}
	errs = append(errs, validateServiceTypeFields(svc)...)
	names := map[string]bool{}
	for i := range spec.Ports {
		errs = append(errs, validateServicePort(&spec.Ports[i], len(spec.Ports) > 1, names, specPath.Child("ports").Index(i))...)
	}
	if spec.Selector != nil {
		errs = append(errs, validateLabels(spec.Selector, specPath.Child("selector"))...)
	}
	errs = append(errs, validateSessionAffinity(spec)...)
	errs = append(errs, validateClusterIPs(svc)...)
	for i, ip := range spec.ExternalIPs {
		idx := specPath.Child("externalIPs").Index(i)
		if ipErrs := validateIP(idx, ip); len(ipErrs) != 0 {
			errs = append(errs, ipErrs...)
		} else {
			errs = append(errs, validateNonSpecialIP(ip, idx)...)
		}
	}
	errs = append(errs, validateServicePortsUnique(spec)...)
	errs = append(errs, validateLoadBalancerFields(svc)...)
	return append(errs, validateTrafficPolicies(svc)...)
}

func validateServiceTypeFields(svc *corev1.Service) field.ErrorList {
	spec := &svc.Spec
	var errs field.ErrorList
	switch spec.Type {
	case corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort:
		if isHeadless(svc) {
			errs = append(errs, field.Invalid(specPath.Child("clusterIPs").Index(0), spec.ClusterIPs[0], fmt.Sprintf("may not be set to 'None' for %s services", spec.Type)))
		}
	case corev1.ServiceTypeExternalName:
		if len(spec.ClusterIPs) > 0 {
			errs = append(errs, field.Forbidden(specPath.Child("clusterIPs"), "may not be set for ExternalName services"))
		}
		if len(spec.IPFamilies) > 0 {
			errs = append(errs, field.Forbidden(specPath.Child("ipFamilies"), "may not be set for ExternalName services"))
		}
		if spec.IPFamilyPolicy != nil {
			errs = append(errs, field.Forbidden(specPath.Child("ipFamilyPolicy"), "may not be set for ExternalName services"))
		}
		if cname := strings.TrimSuffix(spec.ExternalName, "."); cname != "" {
			errs = append(errs, validateDNS1123Subdomain(cname, specPath.Child("externalName"))...)
		} else {
			errs = append(errs, field.Required(specPath.Child("externalName"), ""))
		}
	case "":
		errs = append(errs, field.Required(specPath.Child("type"), ""))
	case corev1.ServiceTypeClusterIP:
		for i, p := range spec.Ports {
			if p.NodePort != 0 {
				errs = append(errs, field.Forbidden(specPath.Child("ports").Index(i).Child("nodePort"), "may not be used when `type` is 'ClusterIP'"))
			}
		}
	default:
		errs = append(errs, field.NotSupported(specPath.Child("type"), spec.Type, serviceTypes))
	}
	return errs
}

func validateServicePort(p *corev1.ServicePort, requireName bool, names map[string]bool, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if requireName && p.Name == "" {
		errs = append(errs, field.Required(fld.Child("name"), ""))
	} else if p.Name != "" {
		errs = append(errs, validateDNS1123Label(p.Name, fld.Child("name"))...)
		if names[p.Name] {
			errs = append(errs, field.Duplicate(fld.Child("name"), p.Name))
		}
		names[p.Name] = true
	}
	errs = append(errs, messages(fld.Child("port"), p.Port, validation.IsValidPortNum(int(p.Port)))...)
	errs = append(errs, validateProtocol(p.Protocol, fld.Child("protocol"))...)
	errs = append(errs, validatePortNumOrName(p.TargetPort, fld.Child("targetPort"))...)
	if p.NodePort != 0 {
		errs = append(errs, messages(fld.Child("nodePort"), p.NodePort, validation.IsValidPortNum(int(p.NodePort)))...)
	}
	if p.AppProtocol != nil {
		errs = append(errs, validateQualifiedName(*p.AppProtocol, fld.Child("appProtocol"))...)
	}
	return errs
}

// validateServicePortsUnique rejects two ports, or two node ports, with
// the same number and protocol.
func validateServicePortsUnique(spec *corev1.ServiceSpec) field.ErrorList {
	var errs field.ErrorList
	nodePorts := map[corev1.ServicePort]bool{}
	for i, p := range spec.Ports {
		if p.NodePort == 0 {
			continue
		}
		key := corev1.ServicePort{Protocol: p.Protocol, NodePort: p.NodePort}
		if nodePorts[key] {
			errs = append(errs, field.Duplicate(specPath.Child("ports").Index(i).Child("nodePort"), p.NodePort))
		}
		nodePorts[key] = true
	}
	ports := map[corev1.ServicePort]bool{}
	for i, p := range spec.Ports {
		key := corev1.ServicePort{Protocol: p.Protocol, Port: p.Port}
		if ports[key] {
			errs = append(errs, field.Duplicate(specPath.Child("ports").Index(i), key))
		}
		ports[key] = true
	}
	return errs
}

func validateSessionAffinity(spec *corev1.ServiceSpec) field.ErrorList {
	fld := specPath.Child("sessionAffinity")
	cfgPath := specPath.Child("sessionAffinityConfig")
	switch spec.SessionAffinity {
	case "":
		return field.ErrorList{field.Required(fld, "")}
	case corev1.ServiceAffinityNone:
		if spec.SessionAffinityConfig != nil {
			return field.ErrorList{field.Forbidden(cfgPath, fmt.Sprintf("must not be set when session affinity is %s", corev1.ServiceAffinityNone))}
		}
	case corev1.ServiceAffinityClientIP:
		when := fmt.Sprintf("when session affinity type is %s", corev1.ServiceAffinityClientIP)
		cfg := spec.SessionAffinityConfig
		switch {
		case cfg == nil:
			return field.ErrorList{field.Required(cfgPath, when)}
		case cfg.ClientIP == nil:
			return field.ErrorList{field.Required(cfgPath.Child("clientIP"), when)}
		case cfg.ClientIP.TimeoutSeconds == nil:
			return field.ErrorList{field.Required(cfgPath.Child("clientIP", "timeoutSeconds"), when)}
		case *cfg.ClientIP.TimeoutSeconds <= 0 || *cfg.ClientIP.TimeoutSeconds > maxClientIPAffinitySec:
			return field.ErrorList{field.Invalid(cfgPath.Child("clientIP", "timeoutSeconds"), cfg.ClientIP.TimeoutSeconds, fmt.Sprintf("must be greater than 0 and less than %d", maxClientIPAffinitySec))}
		}
	default:
		return field.ErrorList{field.NotSupported(fld, spec.SessionAffinity, sessionAffinities)}
	}
	return nil
}

// validateClusterIPs checks that clusterIP and clusterIPs agree, that each
// is an IP (or a lone None), and the IP family fields.
func validateClusterIPs(svc *corev1.Service) field.ErrorList {
	spec := &svc.Spec
	if spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	var errs field.ErrorList
	ipsPath := specPath.Child("clusterIPs")
	if spec.ClusterIP != "" {
		if len(spec.ClusterIPs) == 0 {
			errs = append(errs, field.Required(ipsPath, ""))
		} else if spec.ClusterIPs[0] != spec.ClusterIP {
			errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "first value must match `clusterIP`"))
		}
	} else if len(spec.ClusterIPs) != 0 {
		errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "must be empty when `clusterIP` is not specified"))
	}
	errs = append(errs, validateIPFamilyFields(spec)...)
	invalid := false
	for i, ip := range spec.ClusterIPs {
		if i == 0 && ip == corev1.ClusterIPNone {
			if len(spec.ClusterIPs) > 1 {
				invalid = true
				errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "'None' must be the first and only value"))
			}
			continue
		}
		ipErrs := validateIP(ipsPath.Index(i), ip)
		invalid = invalid || len(ipErrs) != 0
		errs = append(errs, ipErrs...)
	}
	if len(spec.ClusterIPs) > 2 {
		errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "may only hold up to 2 values"))
	}
	if invalid {
		return errs
	}
	if len(spec.ClusterIPs) == 2 && isIPv6(spec.ClusterIPs[0]) == isIPv6(spec.ClusterIPs[1]) {
		errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "may specify no more than one IP for each IP family"))
	}
	if !isHeadless(svc) {
		errs = append(errs, validateClusterIPFamilies(spec)...)
	}
	return errs
}

func validateIPFamilyFields(spec *corev1.ServiceSpec) field.ErrorList {
	var errs field.ErrorList
	seen := map[corev1.IPFamily]bool{}
	for i, f := range spec.IPFamilies {
		if f != corev1.IPv4Protocol && f != corev1.IPv6Protocol {
			errs = append(errs, field.NotSupported(specPath.Child("ipFamilies").Index(i), f, ipFamilies))
		}
		if seen[f] {
			errs = append(errs, field.Duplicate(specPath.Child("ipFamilies").Index(i), f))
		}
		seen[f] = true
	}
	if p := spec.IPFamilyPolicy; p != nil && *p != corev1.IPFamilyPolicySingleStack && *p != corev1.IPFamilyPolicyPreferDualStack && *p != corev1.IPFamilyPolicyRequireDualStack {
		errs = append(errs, field.NotSupported(specPath.Child("ipFamilyPolicy"), *p, ipFamilyPolicies))
	}
	return errs
}

// validateClusterIPFamilies checks that each cluster IP is of the family
// listed at its index.
func validateClusterIPFamilies(spec *corev1.ServiceSpec) field.ErrorList {
	var errs field.ErrorList
	ipsPath := specPath.Child("clusterIPs")
	for i, ip := range spec.ClusterIPs {
		if i >= len(spec.IPFamilies) {
			break
		}
		if spec.IPFamilies[i] == corev1.IPv4Protocol && isIPv6(ip) {
			errs = append(errs, field.Invalid(ipsPath.Index(i), ip, fmt.Sprintf("expected an IPv4 value as indicated by `ipFamilies[%v]`", i)))
		}
		if spec.IPFamilies[i] == corev1.IPv6Protocol && !isIPv6(ip) {
			errs = append(errs, field.Invalid(ipsPath.Index(i), ip, fmt.Sprintf("expected an IPv6 value as indicated by `ipFamilies[%v]`", i)))
		}
	}
	return errs
}

func validateLoadBalancerFields(svc *corev1.Service) field.ErrorList {
	spec := &svc.Spec
	lb := spec.Type == corev1.ServiceTypeLoadBalancer
	var errs field.ErrorList
	if len(spec.LoadBalancerSourceRanges) > 0 {
		fld := specPath.Child("LoadBalancerSourceRanges")
		if !lb {
			errs = append(errs, field.Forbidden(fld, "may only be used when `type` is 'LoadBalancer'"))
		}
		for i, r := range spec.LoadBalancerSourceRanges {
			errs = append(errs, validateCIDR(fld.Index(i), strings.TrimSpace(r))...)
		}
	}
	if spec.AllocateLoadBalancerNodePorts != nil && !lb {
		errs = append(errs, field.Forbidden(specPath.Child("allocateLoadBalancerNodePorts"), "may only be used when `type` is 'LoadBalancer'"))
	}
	if lb && spec.AllocateLoadBalancerNodePorts == nil {
		errs = append(errs, field.Required(field.NewPath("allocateLoadBalancerNodePorts"), ""))
	}
	if spec.LoadBalancerClass != nil {
		if !lb {
			errs = append(errs, field.Forbidden(specPath.Child("loadBalancerClass"), "may only be used when `type` is 'LoadBalancer'"))
		} else {
			errs = append(errs, validateQualifiedName(*spec.LoadBalancerClass, specPath.Child("loadBalancerClass"))...)
		}
	}
	return errs
}

func validateTrafficPolicies(svc *corev1.Service) field.ErrorList {
	spec := &svc.Spec
	var errs field.ErrorList
	etp := specPath.Child("externalTrafficPolicy")
	switch {
	case !externallyAccessible(svc) && spec.ExternalTrafficPolicy != "":
		errs = append(errs, field.Invalid(etp, spec.ExternalTrafficPolicy, "may only be set for externally-accessible services"))
	case externallyAccessible(svc) && spec.ExternalTrafficPolicy == "":
		errs = append(errs, field.Required(etp, ""))
	case spec.ExternalTrafficPolicy != "" && spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyCluster && spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal:
		errs = append(errs, field.NotSupported(etp, spec.ExternalTrafficPolicy, trafficPolicies))
	}
	needsHealthCheck := spec.Type == corev1.ServiceTypeLoadBalancer && spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	hc := specPath.Child("healthCheckNodePort")
	if !needsHealthCheck && spec.HealthCheckNodePort != 0 {
		errs = append(errs, field.Invalid(hc, spec.HealthCheckNodePort, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
	} else if spec.HealthCheckNodePort != 0 {
		errs = append(errs, messages(hc, spec.HealthCheckNodePort, validation.IsValidPortNum(int(spec.HealthCheckNodePort)))...)
	}
	itp := specPath.Child("internalTrafficPolicy")
	if spec.InternalTrafficPolicy == nil {
		if spec.Type == corev1.ServiceTypeNodePort || spec.Type == corev1.ServiceTypeLoadBalancer || spec.Type == corev1.ServiceTypeClusterIP {
			errs = append(errs, field.Required(itp, ""))
		}
	} else if p := *spec.InternalTrafficPolicy; p != corev1.ServiceInternalTrafficPolicyCluster && p != corev1.ServiceInternalTrafficPolicyLocal {
		errs = append(errs, field.NotSupported(itp, p, internalPolicies))
	}
	if td := spec.TrafficDistribution; td != nil {
		valid := []string{corev1.ServiceTrafficDistributionPreferClose, corev1.ServiceTrafficDistributionPreferSameNode, corev1.ServiceTrafficDistributionPreferSameZone}
		ok := false
		for _, v := range valid {
			ok = ok || v == *td
		}
		if !ok {
			errs = append(errs, field.NotSupported(specPath.Child("trafficDistribution"), *td, valid))
		}
	}
	return errs
}

// keepServiceAllocations carries the allocated clusterIPs, node ports and
// health check node port over an update that leaves them out, as
// Kubernetes does, so replacing a Service with its manifest keeps them.
func keepServiceAllocations(svc, old *corev1.Service) {
	if svc.Spec.ClusterIP == "" && len(svc.Spec.ClusterIPs) == 0 {
		svc.Spec.ClusterIP = old.Spec.ClusterIP
		svc.Spec.ClusterIPs = old.Spec.ClusterIPs
	}
	if svc.Spec.HealthCheckNodePort == 0 && svc.Spec.Type == old.Spec.Type {
		svc.Spec.HealthCheckNodePort = old.Spec.HealthCheckNodePort
	}
	if svc.Spec.Type != corev1.ServiceTypeNodePort && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return
	}
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if p.NodePort != 0 {
			continue
		}
		for _, q := range old.Spec.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			if q.Port == p.Port && q.Protocol == proto && q.NodePort != 0 {
				p.NodePort = q.NodePort
			}
		}
	}
}
