package envvar

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// MetadataField returns the value of a downward API fieldPath that names pod
// metadata: metadata.name, metadata.namespace, metadata.uid, metadata.labels
// and metadata.annotations (whole, in the `key="value"` line format, sorted
// by key), or one label or annotation as metadata.labels['key'].
func MetadataField(pod *corev1.Pod, path string) (string, error) {
	if base, key, ok := splitSubscript(path); ok {
		switch base {
		case "metadata.annotations":
			if errs := validation.IsQualifiedName(strings.ToLower(key)); len(errs) != 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", path, strings.Join(errs, ";"))
			}
			return pod.Annotations[key], nil
		case "metadata.labels":
			if errs := validation.IsQualifiedName(key); len(errs) != 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", path, strings.Join(errs, ";"))
			}
			return pod.Labels[key], nil
		default:
			return "", fmt.Errorf("fieldPath %q does not support subscript", path)
		}
	}
	switch path {
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	}
	return "", fmt.Errorf("unsupported fieldPath: %v", path)
}

// splitSubscript splits "metadata.labels['k']" into "metadata.labels" and "k".
func splitSubscript(path string) (base, key string, ok bool) {
	if !strings.HasSuffix(path, "']") {
		return path, "", false
	}
	base, key, ok = strings.Cut(strings.TrimSuffix(path, "']"), "['")
	if !ok || base == "" {
		return path, "", false
	}
	return base, key, true
}

// formatMap writes m as sorted `key="value"` lines, the format of the
// downward API's labels and annotations files.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = fmt.Sprintf("%v=%q", k, m[k])
	}
	return strings.Join(lines, "\n")
}

// podField returns the value of an env fieldRef: the metadata fields of
// MetadataField plus the spec and status fields the kubelet knows.
func podField(pod *corev1.Pod, info PodInfo, path string) (string, error) {
	switch path {
	case "spec.nodeName":
		if info.NodeName != "" {
			return info.NodeName, nil
		}
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		return info.HostIP, nil
	case "status.hostIPs":
		if len(info.HostIPs) == 0 && info.HostIP != "" {
			return info.HostIP, nil
		}
		return strings.Join(info.HostIPs, ","), nil
	case "status.podIP":
		return info.PodIP, nil
	case "status.podIPs":
		if len(info.PodIPs) == 0 && info.PodIP != "" {
			return info.PodIP, nil
		}
		return strings.Join(info.PodIPs, ","), nil
	}
	return MetadataField(pod, path)
}

// ResourceValue returns the value of a resourceFieldRef for the container
// ref.ContainerName of pod (or, when that is empty, the container named
// container), as the kubelet does: limits.cpu, limits.memory,
// limits.ephemeral-storage and the matching requests, divided by
// ref.Divisor (default 1) and rounded up. A limit that is unset defaults to
// the node's allocatable amount; a request that is unset defaults to the
// limit set in the spec, as API defaulting does.
func ResourceValue(pod *corev1.Pod, container string, ref *corev1.ResourceFieldSelector, allocatable corev1.ResourceList) (string, error) {
	name := ref.ContainerName
	if name == "" {
		name = container
	}
	c := findContainer(pod, name)
	if c == nil {
		return "", fmt.Errorf("container %s not found", name)
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	kind, res, ok := strings.Cut(ref.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("unsupported container resource : %v", ref.Resource)
	}
	rn := corev1.ResourceName(res)
	switch rn {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
	default:
		return "", fmt.Errorf("unsupported container resource : %v", ref.Resource)
	}
	q, set := c.Resources.Limits[rn]
	if kind == "requests" {
		if r, ok := c.Resources.Requests[rn]; ok {
			q = r
		} else if !set {
			q = resource.Quantity{}
		}
	} else if !set {
		q = allocatable[rn]
	}
	if rn == corev1.ResourceCPU {
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
}

func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}
