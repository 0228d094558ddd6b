package strategy

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Field paths the downward API exposes through env vars and volumes.
var (
	envFieldPaths = []string{
		"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
		"status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
	}
	volumeFieldPaths = []string{
		"metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid",
	}
	containerResourceFields = []string{
		"limits.cpu", "limits.ephemeral-storage", "limits.memory",
		"requests.cpu", "requests.ephemeral-storage", "requests.memory",
	}
	// downwardFieldLabels are the pod field labels the v1 downward API knows.
	downwardFieldLabels = []string{
		"metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid",
		"spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName", "spec.schedulerName",
		"status.phase", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
	}
)

func validateEnv(vars []corev1.EnvVar, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ev := range vars {
		idx := fld.Index(i)
		if ev.Name == "" {
			errs = append(errs, field.Required(idx.Child("name"), ""))
		} else {
			errs = append(errs, messages(idx.Child("name"), ev.Name, validation.IsRelaxedEnvVarName(ev.Name))...)
		}
		errs = append(errs, validateEnvVarValueFrom(ev, idx.Child("valueFrom"))...)
	}
	return errs
}

func validateEnvVarValueFrom(ev corev1.EnvVar, fld *field.Path) field.ErrorList {
	from := ev.ValueFrom
	if from == nil {
		return nil
	}
	var errs field.ErrorList
	n := 0
	if from.FieldRef != nil {
		n++
		errs = append(errs, validateObjectFieldSelector(from.FieldRef, envFieldPaths, fld.Child("fieldRef"))...)
	}
	if from.ResourceFieldRef != nil {
		n++
		errs = append(errs, validateResourceFieldSelector(from.ResourceFieldRef, false, fld.Child("resourceFieldRef"))...)
	}
	if from.ConfigMapKeyRef != nil {
		n++
		errs = append(errs, validateKeySelector(from.ConfigMapKeyRef.Name, from.ConfigMapKeyRef.Key, fld.Child("configMapKeyRef"))...)
	}
	if from.SecretKeyRef != nil {
		n++
		errs = append(errs, validateKeySelector(from.SecretKeyRef.Name, from.SecretKeyRef.Key, fld.Child("secretKeyRef"))...)
	}
	if from.FileKeyRef != nil {
		n++
	}
	switch {
	case n == 0:
		errs = append(errs, field.Invalid(fld, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
	case ev.Value != "":
		errs = append(errs, field.Invalid(fld, "", "may not be specified when `value` is not empty"))
	case n > 1:
		errs = append(errs, field.Invalid(fld, "", "may not have more than one field specified at a time"))
	}
	return errs
}

// validateObjectFieldSelector checks a downward API field reference
// against the supported paths.
func validateObjectFieldSelector(fs *corev1.ObjectFieldSelector, supported []string, fld *field.Path) field.ErrorList {
	if fs.APIVersion == "" {
		return field.ErrorList{field.Required(fld.Child("apiVersion"), "")}
	}
	if fs.FieldPath == "" {
		return field.ErrorList{field.Required(fld.Child("fieldPath"), "")}
	}
	if err := checkDownwardFieldLabel(fs.APIVersion, fs.FieldPath); err != nil {
		return field.ErrorList{field.Invalid(fld.Child("fieldPath"), fs.FieldPath, fmt.Sprintf("error converting fieldPath: %v", err))}
	}
	if p, subscript, ok := splitSubscriptedPath(fs.FieldPath); ok {
		switch p {
		case "metadata.annotations":
			return validateQualifiedName(strings.ToLower(subscript), fld)
		case "metadata.labels":
			return validateQualifiedName(subscript, fld)
		}
		return field.ErrorList{field.Invalid(fld, p, "does not support subscript")}
	}
	if !slices.Contains(supported, fs.FieldPath) {
		return field.ErrorList{field.NotSupported(fld.Child("fieldPath"), fs.FieldPath, sorted(supported))}
	}
	return nil
}

func checkDownwardFieldLabel(version, label string) error {
	if version != "v1" {
		return fmt.Errorf("unsupported pod version: %s", version)
	}
	if p, _, ok := splitSubscriptedPath(label); ok {
		if p == "metadata.annotations" || p == "metadata.labels" {
			return nil
		}
		return fmt.Errorf("field label does not support subscript: %s", label)
	}
	if !slices.Contains(downwardFieldLabels, label) {
		return fmt.Errorf("field label not supported: %s", label)
	}
	return nil
}

// splitSubscriptedPath splits metadata.labels['key'] into its path and
// subscript.
func splitSubscriptedPath(p string) (string, string, bool) {
	if !strings.HasSuffix(p, "']") {
		return "", "", false
	}
	base, subscript, found := strings.Cut(strings.TrimSuffix(p, "']"), "['")
	if !found || base == "" {
		return "", "", false
	}
	return base, subscript, true
}

var (
	cpuDivisors   = []string{"1m", "1"}
	bytesDivisors = []string{"1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"}
)

func validateResourceFieldSelector(fs *corev1.ResourceFieldSelector, volume bool, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case volume && fs.ContainerName == "":
		errs = append(errs, field.Required(fld.Child("containerName"), ""))
	case fs.Resource == "":
		errs = append(errs, field.Required(fld.Child("resource"), ""))
	case !slices.Contains(containerResourceFields, fs.Resource) && !isHugePagesField(fs.Resource):
		errs = append(errs, field.NotSupported(fld.Child("resource"), fs.Resource, containerResourceFields))
	}
	if fs.Divisor.IsZero() {
		return errs
	}
	d := fs.Divisor.String()
	switch {
	case strings.HasSuffix(fs.Resource, ".cpu") && !slices.Contains(cpuDivisors, d):
		errs = append(errs, field.Invalid(fld.Child("divisor"), fs.Resource, "only divisor's values 1m and 1 are supported with the cpu resource"))
	case strings.HasSuffix(fs.Resource, ".memory") && !slices.Contains(bytesDivisors, d):
		errs = append(errs, field.Invalid(fld.Child("divisor"), fs.Resource, "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource"))
	case strings.HasSuffix(fs.Resource, ".ephemeral-storage") && !slices.Contains(bytesDivisors, d):
		errs = append(errs, field.Invalid(fld.Child("divisor"), fs.Resource, "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the local ephemeral storage resource"))
	case isHugePagesField(fs.Resource) && !slices.Contains(bytesDivisors, d):
		errs = append(errs, field.Invalid(fld.Child("divisor"), fs.Resource, "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the hugepages resource"))
	}
	return errs
}

func isHugePagesField(r string) bool {
	return strings.HasPrefix(r, "requests.hugepages-") || strings.HasPrefix(r, "limits.hugepages-")
}

// validateKeySelector validates a reference to a key of a ConfigMap or
// Secret.
func validateKeySelector(name, key string, fld *field.Path) field.ErrorList {
	errs := validateName(nameIsDNSSubdomain, name, fld.Child("name"))
	if key == "" {
		return append(errs, field.Required(fld.Child("key"), ""))
	}
	return append(errs, messages(fld.Child("key"), key, validation.IsConfigMapKey(key))...)
}

func validateEnvFrom(sources []corev1.EnvFromSource, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, s := range sources {
		idx := fld.Index(i)
		if s.Prefix != "" {
			errs = append(errs, messages(idx.Child("prefix"), s.Prefix, validation.IsRelaxedEnvVarName(s.Prefix))...)
		}
		n := 0
		if s.ConfigMapRef != nil {
			n++
			errs = append(errs, validateEnvSourceName(s.ConfigMapRef.Name, idx.Child("configMapRef"))...)
		}
		if s.SecretRef != nil {
			n++
			errs = append(errs, validateEnvSourceName(s.SecretRef.Name, idx.Child("secretRef"))...)
		}
		switch {
		case n == 0:
			errs = append(errs, field.Invalid(fld, "", "must specify one of: `configMapRef` or `secretRef`"))
		case n > 1:
			errs = append(errs, field.Invalid(fld, "", "may not have more than one field specified at a time"))
		}
	}
	return errs
}

func validateEnvSourceName(name string, fld *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(fld.Child("name"), "")}
	}
	return messages(fld.Child("name"), name, nameIsDNSSubdomain(name, true))
}

// Resource name classes, as Kubernetes' core helpers define them.
func isNativeResource(name corev1.ResourceName) bool {
	return !strings.Contains(string(name), "/") || strings.Contains(string(name), "kubernetes.io/")
}

func isHugePages(name corev1.ResourceName) bool {
	return strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix)
}

func isOvercommitAllowed(name corev1.ResourceName) bool {
	return isNativeResource(name) && !isHugePages(name)
}

func isExtendedResource(name corev1.ResourceName) bool {
	if isNativeResource(name) || strings.HasPrefix(string(name), corev1.DefaultResourceRequestsPrefix) {
		return false
	}
	return len(content.IsQualifiedName(corev1.DefaultResourceRequestsPrefix+string(name))) == 0
}

var standardResources = []string{
	"cpu", "memory", "ephemeral-storage", "storage", "pods", "services", "replicationcontrollers",
	"resourcequotas", "secrets", "configmaps", "persistentvolumeclaims", "services.nodeports",
	"services.loadbalancers", "requests.cpu", "requests.memory", "requests.ephemeral-storage",
	"requests.storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage",
}

func isStandardResource(name corev1.ResourceName) bool {
	return slices.Contains(standardResources, string(name)) || isHugePages(name) ||
		strings.HasPrefix(string(name), "requests."+corev1.ResourceHugePagesPrefix)
}

func isStandardContainerResource(name corev1.ResourceName) bool {
	switch name {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return true
	}
	return isHugePages(name)
}

func validateContainerResourceName(name corev1.ResourceName, fld *field.Path) field.ErrorList {
	errs := messages(fld, name, content.IsQualifiedName(string(name)))
	if len(errs) != 0 {
		return errs
	}
	if !strings.Contains(string(name), "/") {
		if !isStandardResource(name) {
			errs = append(errs, field.Invalid(fld, name, "must be a standard resource type or fully qualified"))
		}
		if !isStandardContainerResource(name) {
			errs = append(errs, field.Invalid(fld, name, "must be a standard resource for containers"))
		}
	} else if !isNativeResource(name) && !isExtendedResource(name) {
		errs = append(errs, field.Invalid(fld, name, "doesn't follow extended resource name standard"))
	}
	return errs
}

func validateResourceQuantity(name corev1.ResourceName, q resource.Quantity, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if q.Sign() < 0 {
		errs = append(errs, field.Invalid(fld, q.String(), apivalidation.IsNegativeErrorMsg))
	}
	if isExtendedResource(name) && q.MilliValue()%1000 != 0 {
		errs = append(errs, field.Invalid(fld, q, "must be an integer"))
	}
	return errs
}

// validateResourceList validates names and quantities of a list such as
// a pod's overhead.
func validateResourceList(list corev1.ResourceList, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, name := range sortedResourceNames(list) {
		errs = append(errs, validateContainerResourceName(name, fld.Key(string(name)))...)
		errs = append(errs, validateResourceQuantity(name, list[name], fld.Key(string(name)))...)
	}
	return errs
}

// validateResourceRequirements checks names, that quantities are not
// negative, and that requests do not exceed limits.
func validateResourceRequirements(req *corev1.ResourceRequirements, fld *field.Path) field.ErrorList {
	limPath, reqPath := fld.Child("limits"), fld.Child("requests")
	errs := validateResourceList(req.Limits, limPath)
	limCPUOrMemory, hugePages := false, false
	for name := range req.Limits {
		limCPUOrMemory = limCPUOrMemory || name == corev1.ResourceCPU || name == corev1.ResourceMemory
		hugePages = hugePages || isHugePages(name)
	}
	reqCPUOrMemory := false
	for _, name := range sortedResourceNames(req.Requests) {
		q := req.Requests[name]
		errs = append(errs, validateContainerResourceName(name, reqPath.Key(string(name)))...)
		errs = append(errs, validateResourceQuantity(name, q, reqPath.Key(string(name)))...)
		limit, ok := req.Limits[name]
		switch {
		case ok && q.Cmp(limit) != 0 && !isOvercommitAllowed(name):
			errs = append(errs, field.Invalid(reqPath, q.String(), fmt.Sprintf("must be equal to %s limit of %s", name, limit.String())))
		case ok && q.Cmp(limit) > 0:
			errs = append(errs, field.Invalid(reqPath, q.String(), fmt.Sprintf("must be less than or equal to %s limit of %s", name, limit.String())))
		case !ok && !isOvercommitAllowed(name):
			errs = append(errs, field.Required(limPath, "Limit must be set for non overcommitable resources"))
		}
		reqCPUOrMemory = reqCPUOrMemory || name == corev1.ResourceCPU || name == corev1.ResourceMemory
		hugePages = hugePages || isHugePages(name)
	}
	if hugePages && !limCPUOrMemory && !reqCPUOrMemory {
		errs = append(errs, field.Forbidden(fld, "HugePages require cpu or memory"))
	}
	return errs
}

func sortedResourceNames(list corev1.ResourceList) []corev1.ResourceName {
	names := make([]corev1.ResourceName, 0, len(list))
	for name := range list {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return names[i] < names[j] })
	return names
}

func sorted(values []string) []string {
	out := slices.Clone(values)
	sort.Strings(out)
	return out
}
