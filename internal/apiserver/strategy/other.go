package strategy

import (
	"net/netip"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

func leaseStrategy() registry.Strategy {
	return typed[*coordinationv1.Lease]{
		validate: validateLease,
		validateUpdate: func(l, old *coordinationv1.Lease) field.ErrorList {
			return append(validateObjectMetaUpdate(&l.ObjectMeta, &old.ObjectMeta), validateLeaseSpec(&l.Spec)...)
		},
	}.strategy()
}

func validateLease(l *coordinationv1.Lease) field.ErrorList {
	errs := validateObjectMeta(&l.ObjectMeta, true, nameIsDNSSubdomain)
	return append(errs, validateLeaseSpec(&l.Spec)...)
}

func validateLeaseSpec(spec *coordinationv1.LeaseSpec) field.ErrorList {
	var errs field.ErrorList
	if d := spec.LeaseDurationSeconds; d != nil && *d <= 0 {
		errs = append(errs, field.Invalid(specPath.Child("leaseDurationSeconds"), spec.LeaseDurationSeconds, "must be greater than 0"))
	}
	if t := spec.LeaseTransitions; t != nil && *t < 0 {
		errs = append(errs, field.Invalid(specPath.Child("leaseTransitions"), spec.LeaseTransitions, "must be greater than or equal to 0"))
	}
	if s := spec.Strategy; s != nil {
		errs = append(errs, validateQualifiedName(string(*s), specPath.Child("strategy"))...)
	}
	if p := spec.PreferredHolder; p != nil && *p != "" && spec.Strategy == nil {
		errs = append(errs, field.Forbidden(specPath.Child("preferredHolder"), "may only be specified if `strategy` is defined"))
	}
	return errs
}

// Limits of an EndpointSlice.
const (
	maxSliceEndpoints = 1000
	maxSliceAddresses = 100
	maxSlicePorts     = 100
)

var addressTypes = []discoveryv1.AddressType{discoveryv1.AddressTypeFQDN, discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6}

func endpointSliceStrategy() registry.Strategy {
	return typed[*discoveryv1.EndpointSlice]{
		defaults: defaultEndpointSlice,
		validate: validateEndpointSlice,
		validateUpdate: func(s, old *discoveryv1.EndpointSlice) field.ErrorList {
			errs := validateObjectMetaUpdate(&s.ObjectMeta, &old.ObjectMeta)
			errs = append(errs, validateEndpointSlice(s)...)
			return append(errs, validateImmutable(s.AddressType, old.AddressType, field.NewPath("addressType"))...)
		},
	}.strategy()
}

func defaultEndpointSlice(s *discoveryv1.EndpointSlice) {
	for i := range s.Ports {
		p := &s.Ports[i]
		if p.Name == nil {
			p.Name = ptrTo("")
		}
		if p.Protocol == nil {
			p.Protocol = ptrTo(corev1.ProtocolTCP)
		}
	}
}

func validateEndpointSlice(s *discoveryv1.EndpointSlice) field.ErrorList {
	errs := validateObjectMeta(&s.ObjectMeta, true, nameIsDNSSubdomain)
	typePath := field.NewPath("addressType")
	switch s.AddressType {
	case "":
		errs = append(errs, field.Required(typePath, ""))
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN:
	default:
		errs = append(errs, field.NotSupported(typePath, s.AddressType, addressTypes))
	}
	errs = append(errs, validateSliceEndpoints(s.Endpoints, s.AddressType, field.NewPath("endpoints"))...)
	return append(errs, validateSlicePorts(s.Ports, field.NewPath("ports"))...)
}

func validateSliceEndpoints(endpoints []discoveryv1.Endpoint, addrType discoveryv1.AddressType, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(endpoints) > maxSliceEndpoints {
		errs = append(errs, field.TooMany(fld, len(endpoints), maxSliceEndpoints))
	}
	for i, ep := range endpoints {
		idx := fld.Index(i)
		addrPath := idx.Child("addresses")
		if len(ep.Addresses) == 0 {
			errs = append(errs, field.Required(addrPath, "must contain at least 1 address"))
		} else if len(ep.Addresses) > maxSliceAddresses {
			errs = append(errs, field.TooMany(addrPath, len(ep.Addresses), maxSliceAddresses))
		}
		for j, addr := range ep.Addresses {
			errs = append(errs, validateSliceAddress(addr, addrType, addrPath.Index(j))...)
		}
		if ep.NodeName != nil {
			errs = append(errs, validateName(nameIsDNSSubdomain, *ep.NodeName, idx.Child("nodeName"))...)
		}
		if ep.Hostname != nil {
			errs = append(errs, validateDNS1123Label(*ep.Hostname, idx.Child("hostname"))...)
		}
	}
	return errs
}

// validateSliceAddress checks an address against the slice's type;
// unknown types are not checked.
func validateSliceAddress(addr string, addrType discoveryv1.AddressType, fld *field.Path) field.ErrorList {
	switch addrType {
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
		if errs := validateIP(fld, addr); len(errs) > 0 {
			return errs
		}
		ip, _ := netip.ParseAddr(addr)
		if addrType == discoveryv1.AddressTypeIPv4 && !ip.Is4() {
			return field.ErrorList{field.Invalid(fld, addr, "must be a valid IPv4 address")}
		}
		if addrType == discoveryv1.AddressTypeIPv6 && !ip.Is6() {
			return field.ErrorList{field.Invalid(fld, addr, "must be a valid IPv6 address")}
		}
		return validateNonSpecialIP(addr, fld)
	case discoveryv1.AddressTypeFQDN:
		return validation.IsFullyQualifiedDomainName(fld, addr)
	}
	return nil
}

func validateSlicePorts(ports []discoveryv1.EndpointPort, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(ports) > maxSlicePorts {
		errs = append(errs, field.TooMany(fld, len(ports), maxSlicePorts))
	}
	names := map[string]bool{}
	for i, p := range ports {
		idx := fld.Index(i)
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		if name != "" {
			errs = append(errs, validateDNS1123Label(name, idx.Child("name"))...)
		}
		if names[name] {
			errs = append(errs, field.Duplicate(idx.Child("name"), name))
		}
		names[name] = true
		if p.Protocol == nil {
			errs = append(errs, field.Required(idx.Child("protocol"), ""))
		} else if !isSupportedProtocol(*p.Protocol) {
			errs = append(errs, field.NotSupported(idx.Child("protocol"), *p.Protocol, supportedPortProtocols))
		}
		if p.AppProtocol != nil {
			errs = append(errs, validateQualifiedName(*p.AppProtocol, idx.Child("appProtocol"))...)
		}
	}
	return errs
}
