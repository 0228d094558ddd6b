package endpoints

import (
	"fmt"
	"net/netip"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// shouldPodBeInEndpoints says whether a pod has an endpoint at all: it
// has an IP, is not terminating (unless terminating pods are wanted), and
// will not run again.
func shouldPodBeInEndpoints(pod *corev1.Pod, includeTerminating bool) bool {
	if pod.Status.PodIP == "" && len(pod.Status.PodIPs) == 0 {
		return false
	}
	if !includeTerminating && pod.DeletionTimestamp != nil {
		return false
	}
	switch pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return pod.Status.Phase != corev1.PodFailed && pod.Status.Phase != corev1.PodSucceeded
	case corev1.RestartPolicyOnFailure:
		return pod.Status.Phase != corev1.PodSucceeded
	}
	return true
}

// podReady says whether the pod's Ready condition is True.
func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// shouldSetHostname says whether the pod's hostname is published for the
// service (the pod's subdomain names the service).
func shouldSetHostname(pod *corev1.Pod, svc *corev1.Service) bool {
	return pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name && pod.Namespace == svc.Namespace
}

// findPort resolves a service port's targetPort on a pod: a number as is,
// a name through the pod's container (and sidecar) ports of the same
// protocol.
func findPort(pod *corev1.Pod, sp *corev1.ServicePort) (int32, error) {
	tp := sp.TargetPort
	switch {
	case tp.Type == intstr.String && tp.StrVal != "":
		for _, cs := range [][]corev1.Container{pod.Spec.Containers, sidecars(pod)} {
			for _, c := range cs {
				for _, p := range c.Ports {
					proto := p.Protocol
					if proto == "" {
						proto = corev1.ProtocolTCP
					}
					if p.Name == tp.StrVal && proto == protocol(sp) {
						return p.ContainerPort, nil
					}
				}
			}
		}
	case tp.Type == intstr.Int && tp.IntVal != 0:
		return tp.IntVal, nil
	case tp.Type == intstr.Int:
		return sp.Port, nil
	}
	return 0, fmt.Errorf("no suitable port for manifest: %s", pod.UID)
}

// sidecars returns the init containers that keep running (restartPolicy
// Always).
func sidecars(pod *corev1.Pod) []corev1.Container {
	var out []corev1.Container
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			out = append(out, c)
		}
	}
	return out
}

func protocol(sp *corev1.ServicePort) corev1.Protocol {
	if sp.Protocol == "" {
		return corev1.ProtocolTCP
	}
	return sp.Protocol
}

// podIPs returns the pod's IPs of a family (IPv4 or IPv6).
func podIPs(pod *corev1.Pod, family corev1.IPFamily) []string {
	all := []string{}
	for _, ip := range pod.Status.PodIPs {
		all = append(all, ip.IP)
	}
	if len(all) == 0 && pod.Status.PodIP != "" {
		all = append(all, pod.Status.PodIP)
	}
	var out []string
	for _, s := range all {
		a, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		if (family == corev1.IPv6Protocol) == (a.Is6() && !a.Is4In6()) {
			out = append(out, a.String())
		}
	}
	return out
}

// serviceFamilies returns the IP families a service's endpoints are of.
func serviceFamilies(svc *corev1.Service) []corev1.IPFamily {
	if len(svc.Spec.IPFamilies) > 0 {
		return svc.Spec.IPFamilies
	}
	if a, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil && a.Is6() && !a.Is4In6() {
		return []corev1.IPFamily{corev1.IPv6Protocol}
	}
	return []corev1.IPFamily{corev1.IPv4Protocol}
}

func podRef(pod *corev1.Pod) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}
}

func resourceVersion(obj runtime.Object) int64 {
	m, err := meta.Accessor(obj)
	if err != nil {
		return 0
	}
	rv, _ := strconv.ParseInt(m.GetResourceVersion(), 10, 64)
	return rv
}
