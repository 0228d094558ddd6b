package strategy

import (
	"strings"

	"k8s.io/apimachinery/pkg/api/validate/content"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var (
	metadataPath = field.NewPath("metadata")
	specPath     = field.NewPath("spec")
	statusPath   = field.NewPath("status")
)

// finalizerKube is the finalizer namespace deletion removes once the
// namespace is empty.
const finalizerKube = "kubernetes"

// Name rules of the served kinds.
var (
	nameIsDNSSubdomain = apivalidation.NameIsDNSSubdomain
	nameIsDNSLabel     = apivalidation.NameIsDNSLabel
	nameIsDNS1035Label = apivalidation.NameIsDNS1035Label
)

// nameIsPathSegment allows any name that is safe as a URL path segment,
// the rule for kinds without a stricter one.
func nameIsPathSegment(name string, prefix bool) []string {
	if prefix {
		return content.IsPathSegmentPrefix(name)
	}
	return content.IsPathSegmentName(name)
}

// validateObjectMeta validates the metadata of a new object, as
// Kubernetes' core ValidateObjectMeta does.
func validateObjectMeta(m *metav1.ObjectMeta, namespaced bool, nameFn apivalidation.ValidateNameFunc) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(m, namespaced, nameFn, metadataPath)
	return append(errs, validateKubeFinalizers(m.Finalizers)...)
}

// validateObjectMetaUpdate validates the metadata of an update. The
// "resourceVersion must be specified" rule is left out: the server owns
// resource versions, and fills them in for unconditional updates as
// Kubernetes' store does before validation.
func validateObjectMetaUpdate(m, old *metav1.ObjectMeta) field.ErrorList {
	var errs field.ErrorList
	for _, e := range apivalidation.ValidateObjectMetaUpdate(m, old, metadataPath) {
		if e.Field == "metadata.resourceVersion" && e.Type == field.ErrorTypeInvalid {
			continue
		}
		errs = append(errs, e)
	}
	return append(errs, validateKubeFinalizers(m.Finalizers)...)
}

// validateKubeFinalizers rejects single-segment finalizer names that are
// not one of Kubernetes' standard ones.
func validateKubeFinalizers(finalizers []string) field.ErrorList {
	var errs field.ErrorList
	for i, f := range finalizers {
		errs = append(errs, validateKubeFinalizerName(f, metadataPath.Child("finalizers").Index(i))...)
	}
	return errs
}

func validateKubeFinalizerName(name string, fld *field.Path) field.ErrorList {
	if strings.Contains(name, "/") {
		return nil
	}
	switch name {
	case finalizerKube, metav1.FinalizerOrphanDependents, metav1.FinalizerDeleteDependents:
		return nil
	}
	return field.ErrorList{field.Invalid(fld, name, "name is neither a standard finalizer name nor is it fully qualified")}
}

func validateImmutable(newVal, oldVal any, fld *field.Path) field.ErrorList {
	return apivalidation.ValidateImmutableField(newVal, oldVal, fld)
}

func validateNonnegative(value int64, fld *field.Path) field.ErrorList {
	return apivalidation.ValidateNonnegativeField(value, fld)
}

func validateDNS1123Label(value string, fld *field.Path) field.ErrorList {
	return messages(fld, value, validation.IsDNS1123Label(value))
}

func validateDNS1123Subdomain(value string, fld *field.Path) field.ErrorList {
	return messages(fld, value, validation.IsDNS1123Subdomain(value))
}

func validateQualifiedName(value string, fld *field.Path) field.ErrorList {
	return messages(fld, value, content.IsQualifiedName(value))
}

// validateName checks value with a name function such as
// nameIsDNSSubdomain.
func validateName(nameFn apivalidation.ValidateNameFunc, value string, fld *field.Path) field.ErrorList {
	return messages(fld, value, nameFn(value, false))
}

func validateLabels(labels map[string]string, fld *field.Path) field.ErrorList {
	return metav1validation.ValidateLabels(labels, fld)
}

func validateLabelName(name string, fld *field.Path) field.ErrorList {
	return metav1validation.ValidateLabelName(name, fld)
}

func validateAnnotations(annotations map[string]string, fld *field.Path) field.ErrorList {
	return apivalidation.ValidateAnnotations(annotations, fld)
}

func validateLabelSelector(sel *metav1.LabelSelector, fld *field.Path) field.ErrorList {
	return metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, fld)
}

// messages turns validation messages into Invalid errors.
func messages(fld *field.Path, value any, msgs []string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range msgs {
		errs = append(errs, field.Invalid(fld, value, msg))
	}
	return errs
}

func ptrTo[T any](v T) *T { return &v }

// validateIP checks an IP address field. The served fields all predate
// Kubernetes' strict IP rules, so non-canonical forms are accepted; leading
// zeros and IPv4-mapped IPv6 addresses are not.
func validateIP(fld *field.Path, value string) field.ErrorList {
	return validation.IsValidIPForLegacyField(fld, value, true, nil)
}

// validateCIDR checks a CIDR field, leniently as validateIP does.
func validateCIDR(fld *field.Path, value string) field.ErrorList {
	return validation.IsValidCIDRForLegacyField(fld, value, true, nil)
}
