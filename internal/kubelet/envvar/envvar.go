// Package envvar computes a container's environment the way the kubelet
// does: service-link variables, envFrom, then env with $(VAR) expansion and
// the downward API, ConfigMap and Secret references.
package envvar

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Sources are where the kubelet reads referenced objects (the API client in
// the agent; a map in tests). A missing object returns an error for which
// apierrors.IsNotFound is true.
type Sources interface {
	ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
}

// PodInfo is what the kubelet knows of a pod beyond its spec.
type PodInfo struct {
	NodeName string // spec.nodeName; the pod's own when empty
	HostIP   string
	HostIPs  []string // status.hostIPs; [HostIP] when empty
	PodIP    string
	PodIPs   []string // status.podIPs; [PodIP] when empty
	// Warn, when set, receives the warnings the kubelet reports as events
	// (reason InvalidEnvironmentVariableNames for skipped envFrom keys).
	Warn func(reason, message string)
}

// Env returns the environment of container c of pod as "KEY=value" entries:
// first the service environment (only when pod.Spec.EnableServiceLinks is
// nil or true, except the default namespace's kubernetes service, which
// always applies), then envFrom, then env. A variable defined again
// replaces the earlier one and takes the later position. Unset resource
// limits in resourceFieldRefs default to allocatable. The errors have the
// kubelet's texts, which it reports as CreateContainerConfigError.
func Env(ctx context.Context, src Sources, pod *corev1.Pod, c *corev1.Container, info PodInfo, services []*corev1.Service, allocatable corev1.ResourceList) ([]string, error) {
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	svc := map[string]string{}
	var out ordered
	for _, e := range serviceEnv(pod.Namespace, links, services) {
		svc[e.Name] = e.Value
		out.set(e.Name, e.Value)
	}
	r := &resolver{ctx: ctx, src: src, pod: pod, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	// own holds envFrom and env variables, which take precedence over the
	// service variables in expansion.
	own := map[string]string{}
	for _, ef := range c.EnvFrom {
		kv, err := r.envFrom(ef, info.Warn)
		if err != nil {
			return nil, err
		}
		for _, e := range kv {
			own[e.Name] = e.Value
			out.set(e.Name, e.Value)
		}
	}
	mapping := lookupIn(own, svc)
	for _, e := range c.Env {
		v, err := r.value(e, c, info, allocatable, mapping)
		if errors.Is(err, errOptionalMissing) {
			continue
		}
		if err != nil {
			return nil, err
		}
		own[e.Name] = v
		out.set(e.Name, v)
	}
	return out.list(), nil
}

// resolver reads the ConfigMaps and Secrets of one Env call, each once.
type resolver struct {
	ctx        context.Context
	src        Sources
	pod        *corev1.Pod
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
}

func (r *resolver) configMap(name string) (*corev1.ConfigMap, error) {
	if cm, ok := r.configMaps[name]; ok {
		return cm, nil
	}
	cm, err := r.src.ConfigMap(r.ctx, r.pod.Namespace, name)
	if apierrors.IsNotFound(err) {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmap"}, name)
	}
	if err != nil {
		return nil, fmt.Errorf("get configmap %s/%s: %w", r.pod.Namespace, name, err)
	}
	r.configMaps[name] = cm
	return cm, nil
}

func (r *resolver) secret(name string) (*corev1.Secret, error) {
	if s, ok := r.secrets[name]; ok {
		return s, nil
	}
	s, err := r.src.Secret(r.ctx, r.pod.Namespace, name)
	if apierrors.IsNotFound(err) {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secret"}, name)
	}
	if err != nil {
		return nil, fmt.Errorf("get secret %s/%s: %w", r.pod.Namespace, name, err)
	}
	r.secrets[name] = s
	return s, nil
}

// envFrom returns the variables of one envFrom source, keys in order.
func (r *resolver) envFrom(ef corev1.EnvFromSource, warn func(reason, message string)) ([]corev1.EnvVar, error) {
	var (
		data map[string]string
		kind string
		name string
	)
	switch {
	case ef.ConfigMapRef != nil:
		kind, name = "configMap", ef.ConfigMapRef.Name
		cm, err := r.configMap(name)
		if err != nil {
			if apierrors.IsNotFound(err) && isTrue(ef.ConfigMapRef.Optional) {
				return nil, nil
			}
			return nil, err
		}
		data = cm.Data
	case ef.SecretRef != nil:
		kind, name = "secret", ef.SecretRef.Name
		s, err := r.secret(name)
		if err != nil {
			if apierrors.IsNotFound(err) && isTrue(ef.SecretRef.Optional) {
				return nil, nil
			}
			return nil, err
		}
		data = make(map[string]string, len(s.Data))
		for k, v := range s.Data {
			data[k] = string(v)
		}
	default:
		return nil, nil
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []corev1.EnvVar
	var invalid []string
	for _, k := range keys {
		n := ef.Prefix + k
		if len(validation.IsRelaxedEnvVarName(n)) != 0 {
			invalid = append(invalid, n)
			continue
		}
		out = append(out, corev1.EnvVar{Name: n, Value: data[k]})
	}
	if len(invalid) > 0 && warn != nil {
		warn("InvalidEnvironmentVariableNames", fmt.Sprintf(
			"Keys [%s] from the EnvFrom %s %s/%s were skipped since they are considered invalid environment variable names.",
			strings.Join(invalid, ", "), kind, r.pod.Namespace, name))
	}
	return out, nil
}

// value resolves one env entry. It returns errOptionalMissing for an
// optional reference to something missing, which Env skips.
func (r *resolver) value(e corev1.EnvVar, c *corev1.Container, info PodInfo, allocatable corev1.ResourceList, mapping func(string) string) (string, error) {
	if e.Value != "" || e.ValueFrom == nil {
		return expand(e.Value, mapping), nil
	}
	from := e.ValueFrom
	switch {
	case from.FieldRef != nil:
		return podField(r.pod, info, from.FieldRef.FieldPath)
	case from.ResourceFieldRef != nil:
		return ResourceValue(r.pod, c.Name, from.ResourceFieldRef, allocatable)
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		cm, err := r.configMap(ref.Name)
		if err != nil {
			return "", optionalMissing(err, ref.Optional)
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			if isTrue(ref.Optional) {
				return "", errOptionalMissing
			}
			return "", fmt.Errorf("couldn't find key %v in ConfigMap %v/%v", ref.Key, r.pod.Namespace, ref.Name)
		}
		return v, nil
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		s, err := r.secret(ref.Name)
		if err != nil {
			return "", optionalMissing(err, ref.Optional)
		}
		b, ok := s.Data[ref.Key]
		if !ok {
			if isTrue(ref.Optional) {
				return "", errOptionalMissing
			}
			return "", fmt.Errorf("couldn't find key %v in Secret %v/%v", ref.Key, r.pod.Namespace, ref.Name)
		}
		return string(b), nil
	}
	return "", fmt.Errorf("env %s: unsupported valueFrom", e.Name)
}

// errOptionalMissing marks an optional reference to a missing object, which
// value reports as skip.
var errOptionalMissing = errors.New("optional object missing")

func optionalMissing(err error, optional *bool) error {
	if apierrors.IsNotFound(err) && isTrue(optional) {
		return errOptionalMissing
	}
	return err
}

func isTrue(b *bool) bool { return b != nil && *b }

// ordered is an environment in definition order; setting a name again
// moves it to the end with its new value.
type ordered struct {
	names  []string
	values map[string]string
}

func (o *ordered) set(name, value string) {
	if o.values == nil {
		o.values = map[string]string{}
	}
	if _, ok := o.values[name]; ok {
		for i, n := range o.names {
			if n == name {
				o.names = append(o.names[:i], o.names[i+1:]...)
				break
			}
		}
	}
	o.names = append(o.names, name)
	o.values[name] = value
}

func (o *ordered) list() []string {
	out := make([]string, len(o.names))
	for i, n := range o.names {
		out[i] = n + "=" + o.values[n]
	}
	return out
}
