package strategy

import (
	"encoding/json"

	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

func namespaceStrategy() registry.Strategy {
	return typed[*corev1.Namespace]{
		defaults:         defaultNamespace,
		prepareForCreate: prepareNamespaceForCreate,
		validate:         validateNamespace,
		validateUpdate: func(ns, old *corev1.Namespace) field.ErrorList {
			return append(validateObjectMetaUpdate(&ns.ObjectMeta, &old.ObjectMeta), validateNamespaceFinalizers(ns.Spec.Finalizers)...)
		},
		validateStatusUpdate: validateNamespaceStatusUpdate,
	}.strategy()
}

// defaultNamespace labels a namespace with its name, so selectors can pick
// namespaces by name.
func defaultNamespace(ns *corev1.Namespace) {
	if ns.Name != "" {
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
	}
	if ns.Status.Phase == "" {
		ns.Status.Phase = corev1.NamespaceActive
	}
}

// prepareNamespaceForCreate makes a new namespace Active and gives it the
// kubernetes finalizer, which namespace deletion removes once emptied.
func prepareNamespaceForCreate(ns *corev1.Namespace) {
	ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
	if !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		ns.Spec.Finalizers = append(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
	}
}

func validateNamespace(ns *corev1.Namespace) field.ErrorList {
	errs := validateObjectMeta(&ns.ObjectMeta, false, nameIsDNSLabel)
	return append(errs, validateNamespaceFinalizers(ns.Spec.Finalizers)...)
}

func validateNamespaceFinalizers(finalizers []corev1.FinalizerName) field.ErrorList {
	var errs field.ErrorList
	fld := specPath.Child("finalizers")
	for _, f := range finalizers {
		errs = append(errs, apivalidation.ValidateFinalizerName(string(f), fld)...)
		errs = append(errs, validateKubeFinalizerName(string(f), fld)...)
	}
	return errs
}

func validateNamespaceStatusUpdate(ns, old *corev1.Namespace) field.ErrorList {
	errs := validateObjectMetaUpdate(&ns.ObjectMeta, &old.ObjectMeta)
	fld := field.NewPath("status", "Phase")
	if ns.DeletionTimestamp.IsZero() {
		if ns.Status.Phase != corev1.NamespaceActive {
			errs = append(errs, field.Invalid(fld, ns.Status.Phase, "may only be 'Active' if `deletionTimestamp` is empty"))
		}
	} else if ns.Status.Phase != corev1.NamespaceTerminating {
		errs = append(errs, field.Invalid(fld, ns.Status.Phase, "may only be 'Terminating' if `deletionTimestamp` is not empty"))
	}
	return errs
}

func nodeStrategy() registry.Strategy {
	return typed[*corev1.Node]{
		defaults:             defaultNode,
		validate:             validateNode,
		validateUpdate:       validateNodeUpdate,
		validateStatusUpdate: validateNodeUpdate,
	}.strategy()
}

func defaultNode(node *corev1.Node) {
	st := &node.Status
	roundResources(st.Capacity)
	roundResources(st.Allocatable)
	if st.Allocatable == nil && st.Capacity != nil {
		st.Allocatable = st.Capacity.DeepCopy()
	}
}

func validateNode(node *corev1.Node) field.ErrorList {
	errs := validateObjectMeta(&node.ObjectMeta, false, nameIsDNSSubdomain)
	// Kubernetes reports taints under metadata.
	errs = append(errs, validateNodeTaints(node.Spec.Taints, metadataPath.Child("taints"))...)
	errs = append(errs, validateNodeResources(node)...)
	fld := specPath.Child("podCIDRs")
	for i, cidr := range node.Spec.PodCIDRs {
		errs = append(errs, validateCIDR(fld.Index(i), cidr)...)
	}
	if len(node.Spec.PodCIDRs) > 2 {
		errs = append(errs, field.Invalid(fld, node.Spec.PodCIDRs, "may specify no more than one CIDR for each IP family"))
	}
	return errs
}

func validateNodeTaints(taints []corev1.Taint, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[corev1.TaintEffect]map[string]bool{}
	for i, t := range taints {
		idx := fld.Index(i)
		errs = append(errs, validateLabelName(t.Key, idx.Child("key"))...)
		if msgs := content.IsLabelValue(t.Value); len(msgs) != 0 {
			errs = append(errs, field.Invalid(idx.Child("value"), t.Value, strings.Join(msgs, ";")))
		}
		errs = append(errs, validateTaintEffect(t.Effect, false, idx.Child("effect"))...)
		if seen[t.Effect][t.Key] {
			dup := field.Duplicate(idx, t)
			dup.Detail = "taints must be unique by key and effect pair"
			errs = append(errs, dup)
			continue
		}
		if seen[t.Effect] == nil {
			seen[t.Effect] = map[string]bool{}
		}
		seen[t.Effect][t.Key] = true
	}
	return errs
}

func validateNodeResources(node *corev1.Node) field.ErrorList {
	var errs field.ErrorList
	for _, name := range sortedResourceNames(node.Status.Capacity) {
		errs = append(errs, validateResourceQuantity(name, node.Status.Capacity[name], field.NewPath("status", "capacity", string(name)))...)
	}
	for _, name := range sortedResourceNames(node.Status.Allocatable) {
		errs = append(errs, validateResourceQuantity(name, node.Status.Allocatable[name], field.NewPath("status", "allocatable", string(name)))...)
	}
	return errs
}

// validateNodeUpdate keeps podCIDRs and providerID once set.
func validateNodeUpdate(node, old *corev1.Node) field.ErrorList {
	errs := validateObjectMetaUpdate(&node.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateNodeResources(node)...)
	seen := map[corev1.NodeAddress]bool{}
	for i, a := range node.Status.Addresses {
		if seen[a] {
			errs = append(errs, field.Duplicate(field.NewPath("status", "addresses").Index(i), a))
		}
		seen[a] = true
	}
	if len(old.Spec.PodCIDRs) > 0 && !slices.Equal(old.Spec.PodCIDRs, node.Spec.PodCIDRs) {
		errs = append(errs, field.Forbidden(specPath.Child("podCIDRs"), "node updates may not change podCIDR except from \"\" to valid"))
	}
	if old.Spec.ProviderID != "" && old.Spec.ProviderID != node.Spec.ProviderID {
		errs = append(errs, field.Forbidden(specPath.Child("providerID"), "node updates may not change providerID except from \"\" to valid"))
	}
	errs = append(errs, validateNodeTaints(node.Spec.Taints, metadataPath.Child("taints"))...)
	if node.Spec.DoNotUseExternalID != old.Spec.DoNotUseExternalID {
		errs = append(errs, field.Forbidden(specPath.Child("externalID"), "may not be updated"))
	}
	return errs
}

func endpointsStrategy() registry.Strategy {
	return typed[*corev1.Endpoints]{
		defaults: defaultEndpoints,
		validate: validateEndpoints,
		validateUpdate: func(ep, old *corev1.Endpoints) field.ErrorList {
			return append(validateObjectMetaUpdate(&ep.ObjectMeta, &old.ObjectMeta), validateEndpoints(ep)...)
		},
	}.strategy()
}

func defaultEndpoints(ep *corev1.Endpoints) {
	for i := range ep.Subsets {
		for j := range ep.Subsets[i].Ports {
			if p := &ep.Subsets[i].Ports[j]; p.Protocol == "" {
				p.Protocol = corev1.ProtocolTCP
			}
		}
	}
}

func validateEndpoints(ep *corev1.Endpoints) field.ErrorList {
	errs := validateObjectMeta(&ep.ObjectMeta, true, nameIsDNSSubdomain)
	fld := field.NewPath("subsets")
	for i, ss := range ep.Subsets {
		idx := fld.Index(i)
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			errs = append(errs, field.Required(idx, "must specify `addresses` or `notReadyAddresses`"))
		}
		for j := range ss.Addresses {
			errs = append(errs, validateEndpointAddress(&ss.Addresses[j], idx.Child("addresses").Index(j))...)
		}
		for j := range ss.NotReadyAddresses {
			errs = append(errs, validateEndpointAddress(&ss.NotReadyAddresses[j], idx.Child("notReadyAddresses").Index(j))...)
		}
		for j, p := range ss.Ports {
			errs = append(errs, validateEndpointPort(p.Name, p.Port, p.Protocol, p.AppProtocol, len(ss.Ports) > 1, idx.Child("ports").Index(j))...)
		}
	}
	return errs
}

func validateEndpointAddress(a *corev1.EndpointAddress, fld *field.Path) field.ErrorList {
	errs := validateIP(fld.Child("ip"), a.IP)
	if a.Hostname != "" {
		errs = append(errs, validateDNS1123Label(a.Hostname, fld.Child("hostname"))...)
	}
	if a.NodeName != nil {
		errs = append(errs, validateName(nameIsDNSSubdomain, *a.NodeName, fld.Child("nodeName"))...)
	}
	return append(errs, validateNonSpecialIP(a.IP, fld.Child("ip"))...)
}

func validateEndpointPort(name string, port int32, protocol corev1.Protocol, appProtocol *string, requireName bool, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if requireName && name == "" {
		errs = append(errs, field.Required(fld.Child("name"), ""))
	} else if name != "" {
		errs = append(errs, validateDNS1123Label(name, fld.Child("name"))...)
	}
	errs = append(errs, messages(fld.Child("port"), port, validation.IsValidPortNum(int(port)))...)
	errs = append(errs, validateProtocol(protocol, fld.Child("protocol"))...)
	if appProtocol != nil {
		errs = append(errs, validateQualifiedName(*appProtocol, fld.Child("appProtocol"))...)
	}
	return errs
}

func configMapStrategy() registry.Strategy {
	return typed[*corev1.ConfigMap]{
		defaults: func(cm *corev1.ConfigMap) {
			if cm.Data == nil {
				cm.Data = map[string]string{}
			}
		},
		validate:       validateConfigMap,
		validateUpdate: validateConfigMapUpdate,
	}.strategy()
}

func validateConfigMap(cm *corev1.ConfigMap) field.ErrorList {
	errs := validateObjectMeta(&cm.ObjectMeta, true, nameIsDNSSubdomain)
	size := 0
	for _, key := range sortedKeys(cm.Data) {
		fld := field.NewPath("data").Key(key)
		errs = append(errs, messages(fld, key, validation.IsConfigMapKey(key))...)
		if _, dup := cm.BinaryData[key]; dup {
			errs = append(errs, field.Invalid(fld, key, "duplicate of key present in binaryData"))
		}
		size += len(cm.Data[key])
	}
	for _, key := range sortedKeys(cm.BinaryData) {
		errs = append(errs, messages(field.NewPath("binaryData").Key(key), key, validation.IsConfigMapKey(key))...)
		size += len(cm.BinaryData[key])
	}
	if size > corev1.MaxSecretSize {
		errs = append(errs, field.TooLong(field.NewPath(""), "", corev1.MaxSecretSize))
	}
	return errs
}

func validateConfigMapUpdate(cm, old *corev1.ConfigMap) field.ErrorList {
	errs := validateObjectMetaUpdate(&cm.ObjectMeta, &old.ObjectMeta)
	if old.Immutable != nil && *old.Immutable {
		errs = append(errs, validateImmutableData(cm.Immutable, "data", !apiequality.Semantic.DeepEqual(cm.Data, old.Data))...)
		if !apiequality.Semantic.DeepEqual(cm.BinaryData, old.BinaryData) {
			errs = append(errs, field.Forbidden(field.NewPath("binaryData"), "field is immutable when `immutable` is set"))
		}
	}
	return append(errs, validateConfigMap(cm)...)
}

// validateImmutableData forbids unsetting immutable and changing the data
// of an immutable ConfigMap or Secret.
func validateImmutableData(immutable *bool, dataField string, dataChanged bool) field.ErrorList {
	var errs field.ErrorList
	if immutable == nil || !*immutable {
		errs = append(errs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
	}
	if dataChanged {
		errs = append(errs, field.Forbidden(field.NewPath(dataField), "field is immutable when `immutable` is set"))
	}
	return errs
}

func secretStrategy() registry.Strategy {
	return typed[*corev1.Secret]{
		defaults:       defaultSecret,
		validate:       validateSecret,
		validateUpdate: validateSecretUpdate,
	}.strategy()
}

// defaultSecret defaults the type and merges the write-only stringData
// into data, as Kubernetes' conversion does.
func defaultSecret(s *corev1.Secret) {
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	if len(s.StringData) > 0 && s.Data == nil {
		s.Data = map[string][]byte{}
	}
	for k, v := range s.StringData {
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
}

func validateSecret(s *corev1.Secret) field.ErrorList {
	errs := validateObjectMeta(&s.ObjectMeta, true, nameIsDNSSubdomain)
	dataPath := field.NewPath("data")
	size := 0
	for _, key := range sortedKeys(s.Data) {
		errs = append(errs, messages(dataPath.Key(key), key, validation.IsConfigMapKey(key))...)
		size += len(s.Data[key])
	}
	if size > corev1.MaxSecretSize {
		errs = append(errs, field.TooLong(dataPath, "", corev1.MaxSecretSize))
	}
	return append(errs, validateSecretType(s, dataPath)...)
}

// validateSecretType checks the keys each well-known secret type needs.
func validateSecretType(s *corev1.Secret, dataPath *field.Path) field.ErrorList {
	required := func(keys ...string) field.ErrorList {
		var errs field.ErrorList
		for _, k := range keys {
			if _, ok := s.Data[k]; !ok {
				errs = append(errs, field.Required(dataPath.Key(k), ""))
			}
		}
		return errs
	}
	jsonKey := func(key string) field.ErrorList {
		if errs := required(key); errs != nil {
			return errs
		}
		if err := json.Unmarshal(s.Data[key], &map[string]any{}); err != nil {
			return field.ErrorList{field.Invalid(dataPath.Key(key), "<secret contents redacted>", err.Error())}
		}
		return nil
	}
	switch s.Type {
	case corev1.SecretTypeServiceAccountToken:
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			return field.ErrorList{field.Required(metadataPath.Child("annotations").Key(corev1.ServiceAccountNameKey), "")}
		}
	case corev1.SecretTypeDockercfg:
		return jsonKey(corev1.DockerConfigKey)
	case corev1.SecretTypeDockerConfigJson:
		return jsonKey(corev1.DockerConfigJsonKey)
	case corev1.SecretTypeBasicAuth:
		_, user := s.Data[corev1.BasicAuthUsernameKey]
		_, pass := s.Data[corev1.BasicAuthPasswordKey]
		if !user && !pass {
			return required(corev1.BasicAuthUsernameKey, corev1.BasicAuthPasswordKey)
		}
	case corev1.SecretTypeSSHAuth:
		if len(s.Data[corev1.SSHAuthPrivateKey]) == 0 {
			return field.ErrorList{field.Required(dataPath.Key(corev1.SSHAuthPrivateKey), "")}
		}
	case corev1.SecretTypeTLS:
		return required(corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	}
	return nil
}

func validateSecretUpdate(s, old *corev1.Secret) field.ErrorList {
	errs := validateObjectMetaUpdate(&s.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateImmutable(s.Type, old.Type, field.NewPath("type"))...)
	if old.Immutable != nil && *old.Immutable {
		errs = append(errs, validateImmutableData(s.Immutable, "data", !apiequality.Semantic.DeepEqual(s.Data, old.Data))...)
	}
	return append(errs, validateSecret(s)...)
}

func serviceAccountStrategy() registry.Strategy {
	validate := func(sa *corev1.ServiceAccount) field.ErrorList {
		return validateObjectMeta(&sa.ObjectMeta, true, nameIsDNSSubdomain)
	}
	return typed[*corev1.ServiceAccount]{
		validate: validate,
		validateUpdate: func(sa, old *corev1.ServiceAccount) field.ErrorList {
			return append(validateObjectMetaUpdate(&sa.ObjectMeta, &old.ObjectMeta), validate(sa)...)
		},
	}.strategy()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
