package strategy

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateNonSpecialIP rejects unspecified, loopback and link-local
// addresses, which make no sense as service or endpoint addresses.
func validateNonSpecialIP(ip string, fld *field.Path) field.ErrorList {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return field.ErrorList{field.Invalid(fld, ip, "must be a valid IP address")}
	}
	addr = addr.Unmap()
	var errs field.ErrorList
	if addr.IsUnspecified() {
		errs = append(errs, field.Invalid(fld, ip, fmt.Sprintf("may not be unspecified (%v)", ip)))
	}
	if addr.IsLoopback() {
		errs = append(errs, field.Invalid(fld, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
	}
	if addr.IsLinkLocalUnicast() {
		errs = append(errs, field.Invalid(fld, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
	}
	if addr.IsLinkLocalMulticast() {
		errs = append(errs, field.Invalid(fld, ip, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
	}
	return errs
}

// validateServiceUpdate validates the new service and that its cluster IPs
// and families only change in the ways Kubernetes allows: set once, then
// only a secondary may be added or removed.
func validateServiceUpdate(svc, old *corev1.Service) field.ErrorList {
	errs := validateObjectMetaUpdate(&svc.ObjectMeta, &old.ObjectMeta)
	if svc.Spec.Type != corev1.ServiceTypeExternalName && old.Spec.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, validateClusterIPsUpdate(svc, old)...)
		errs = append(errs, validateIPFamiliesUpdate(svc, old)...)
	}
	if old.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		errs = append(errs, validateImmutable(svc.Spec.LoadBalancerClass, old.Spec.LoadBalancerClass, specPath.Child("loadBalancerClass"))...)
	}
	if needsHealthCheck(old) && needsHealthCheck(svc) && old.Spec.HealthCheckNodePort != 0 && svc.Spec.HealthCheckNodePort != old.Spec.HealthCheckNodePort {
		errs = append(errs, field.Forbidden(specPath.Child("healthCheckNodePort"), "field is immutable"))
	}
	return append(errs, validateService(svc)...)
}

func needsHealthCheck(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

func validateClusterIPsUpdate(svc, old *corev1.Service) field.ErrorList {
	if isHeadless(svc) && isHeadless(old) {
		return nil
	}
	ips, oldIPs := svc.Spec.ClusterIPs, old.Spec.ClusterIPs
	fld := specPath.Child("clusterIPs")
	var errs field.ErrorList
	switch {
	case len(oldIPs) == len(ips):
		for i := range oldIPs {
			if oldIPs[i] != ips[i] {
				errs = append(errs, field.Invalid(fld.Index(i), ips, "may not change once set"))
			}
		}
	case len(oldIPs) > len(ips):
		if len(ips) == 0 {
			errs = append(errs, field.Invalid(fld.Index(0), ips, "primary clusterIP can not be unset"))
		} else if ips[0] != oldIPs[0] {
			errs = append(errs, field.Invalid(fld.Index(0), ips, "may not change once set"))
		}
		if len(ips) == 1 && (svc.Spec.IPFamilyPolicy == nil || *svc.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack) {
			errs = append(errs, field.Invalid(specPath.Child("ipFamilyPolicy"), svc.Spec.IPFamilyPolicy, "must be set to 'SingleStack' when releasing the secondary clusterIP"))
		}
	case len(oldIPs) > 0 && ips[0] != oldIPs[0]:
		errs = append(errs, field.Invalid(fld.Index(0), ips, "may not change once set"))
	}
	return errs
}

func validateIPFamiliesUpdate(svc, old *corev1.Service) field.ErrorList {
	if isHeadless(svc) || isHeadless(old) {
		return nil
	}
	fams, oldFams := svc.Spec.IPFamilies, old.Spec.IPFamilies
	fld := specPath.Child("ipFamilies")
	var errs field.ErrorList
	switch {
	case len(oldFams) == len(fams):
		for i := range oldFams {
			if oldFams[i] != fams[i] {
				errs = append(errs, field.Invalid(fld.Index(0), fams, "may not change once set"))
			}
		}
	case len(oldFams) > len(fams):
		if len(svc.Spec.ClusterIPs) == 0 {
			errs = append(errs, field.Invalid(fld.Index(0), fams, "primary ipFamily can not be unset"))
		}
		if len(fams) > 0 && fams[0] != oldFams[0] {
			errs = append(errs, field.Invalid(fld.Index(0), svc.Spec.ClusterIPs, "may not change once set"))
		}
		if len(fams) == 1 && (svc.Spec.IPFamilyPolicy == nil || *svc.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack) {
			errs = append(errs, field.Invalid(specPath.Child("ipFamilyPolicy"), svc.Spec.IPFamilyPolicy, "must be set to 'SingleStack' when releasing the secondary ipFamily"))
		}
	case len(oldFams) > 0 && len(fams) > 0 && fams[0] != oldFams[0]:
		errs = append(errs, field.Invalid(fld.Index(0), svc.Spec.ClusterIPs, "may not change once set"))
	}
	return errs
}

func validateServiceStatusUpdate(svc, old *corev1.Service) field.ErrorList {
	errs := validateObjectMetaUpdate(&svc.ObjectMeta, &old.ObjectMeta)
	fld := statusPath.Child("loadBalancer", "ingress")
	for i, ing := range svc.Status.LoadBalancer.Ingress {
		idx := fld.Index(i)
		if ing.IP != "" {
			errs = append(errs, validateIP(idx.Child("ip"), ing.IP)...)
		}
		if ing.Hostname != "" {
			errs = append(errs, validateDNS1123Subdomain(ing.Hostname, idx.Child("hostname"))...)
			if _, err := netip.ParseAddr(ing.Hostname); err == nil {
				errs = append(errs, field.Invalid(idx.Child("hostname"), ing.Hostname, "must be a DNS name, not an IP address"))
			}
		}
		if ing.IPMode != nil {
			if ing.IP == "" {
				errs = append(errs, field.Forbidden(idx.Child("ipMode"), "may not be specified when `ip` is not set"))
			} else if m := *ing.IPMode; m != corev1.LoadBalancerIPModeVIP && m != corev1.LoadBalancerIPModeProxy {
				errs = append(errs, field.NotSupported(idx.Child("ipMode"), m, []corev1.LoadBalancerIPMode{corev1.LoadBalancerIPModeProxy, corev1.LoadBalancerIPModeVIP}))
			}
		}
	}
	return errs
}

// isIPv6 reports whether s parses as an IPv6 address.
func isIPv6(s string) bool {
	addr, err := netip.ParseAddr(s)
	return err == nil && addr.Is6() && !addr.Is4In6()
}
