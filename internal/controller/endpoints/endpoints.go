package endpoints

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// headlessLabel marks the Endpoints and slices of a headless service.
const headlessLabel = "service.kubernetes.io/headless"

// syncEndpoints creates or updates the service's Endpoints (same name).
func (c *Controller) syncEndpoints(ctx context.Context, svc *corev1.Service, pods []*corev1.Pod) error {
	subsets := desiredSubsets(svc, pods)
	want := map[string]string{}
	for k, v := range svc.Labels {
		want[k] = v
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		want[headlessLabel] = ""
	}
	truncated := truncate(subsets)
	cur, exists := c.endpoints.Get(svc.Namespace, svc.Name)
	if exists && apiequality.Semantic.DeepEqual(cur.Subsets, subsets) && equalLabels(cur.Labels, want) &&
		(cur.Annotations[overCapacityAnnotation] == "truncated") == truncated {
		return nil
	}
	var ep *corev1.Endpoints
	if exists {
		ep = cur.DeepCopy()
	} else {
		ep = &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace}}
	}
	ep.Labels, ep.Subsets = want, subsets
	if len(want) == 0 {
		ep.Labels = nil
	}
	if truncated {
		metav1.SetMetaDataAnnotation(&ep.ObjectMeta, overCapacityAnnotation, "truncated")
	} else if _, ok := ep.Annotations[overCapacityAnnotation]; ok {
		delete(ep.Annotations, overCapacityAnnotation)
	}
	write, reason, msg := c.client.Create, "FailedToCreateEndpoint", "Failed to create endpoint for service"
	if exists {
		write, reason, msg = c.client.Update, "FailedToUpdateEndpoint", "Failed to update endpoint"
	}
	got, err := write(ctx, ep)
	switch {
	case err == nil:
		return waitFor(ctx, c.endpoints.Res, got)
	case !exists && apierrors.IsForbidden(err):
		return nil // the namespace is terminating
	case !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err):
		c.recorder.Eventf(ctx, ep, corev1.EventTypeWarning, reason, "%s %s/%s: %v", msg, svc.Namespace, svc.Name, err)
	}
	return fmt.Errorf("write endpoints %s/%s: %w", ep.Namespace, ep.Name, err)
}

// desiredSubsets computes the Endpoints subsets of a service as
// Kubernetes packs them: each pod's address under every service port the
// pod resolves, then the ports that have exactly the same addresses (and
// readiness) grouped into one subset, all sorted.
func desiredSubsets(svc *corev1.Service, pods []*corev1.Pod) []corev1.EndpointSubset {
	family := serviceFamilies(svc)[0]
	publish := svc.Spec.PublishNotReadyAddresses
	addrs := map[string]corev1.EndpointAddress{} // by addrKey
	ports := map[string]*corev1.EndpointPort{}   // by portKey; nil for "no ports"
	readyByPort := map[string]map[string]bool{}  // portKey -> addrKey -> ready
	add := func(pk string, p *corev1.EndpointPort, ak string, ready bool) {
		if readyByPort[pk] == nil {
			readyByPort[pk], ports[pk] = map[string]bool{}, p
		}
		readyByPort[pk][ak] = readyByPort[pk][ak] || ready
	}
	for _, pod := range pods {
		if !shouldPodBeInEndpoints(pod, publish) {
			continue
		}
		ips := podIPs(pod, family)
		if len(ips) == 0 {
			continue
		}
		addr := corev1.EndpointAddress{IP: ips[0], TargetRef: podRef(pod)}
		if pod.Spec.NodeName != "" {
			n := pod.Spec.NodeName
			addr.NodeName = &n
		}
		if shouldSetHostname(pod, svc) {
			addr.Hostname = pod.Spec.Hostname
		}
		ak := addr.IP + "/" + string(pod.UID)
		ready := publish || podReady(pod)
		if len(svc.Spec.Ports) == 0 {
			// Only a headless service may have endpoints without ports.
			if svc.Spec.ClusterIP == corev1.ClusterIPNone {
				addrs[ak] = addr
				add("", nil, ak, ready)
			}
			continue
		}
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			num, err := findPort(pod, sp)
			if err != nil {
				continue
			}
			p := &corev1.EndpointPort{Name: sp.Name, Port: num, Protocol: protocol(sp), AppProtocol: sp.AppProtocol}
			addrs[ak] = addr
			add(portKey(p), p, ak, ready)
		}
	}
	// Ports with the same addresses share a subset.
	bySet := map[string]*corev1.EndpointSubset{}
	var setKeys []string
	for pk, set := range readyByPort {
		aks := make([]string, 0, len(set))
		for ak, ready := range set {
			aks = append(aks, fmt.Sprintf("%s/%t", ak, ready))
		}
		sort.Strings(aks)
		sk := strings.Join(aks, ",")
		ss, ok := bySet[sk]
		if !ok {
			ss = &corev1.EndpointSubset{}
			for ak, ready := range set {
				if ready {
					ss.Addresses = append(ss.Addresses, addrs[ak])
				} else {
					ss.NotReadyAddresses = append(ss.NotReadyAddresses, addrs[ak])
				}
			}
			sortAddresses(ss.Addresses)
			sortAddresses(ss.NotReadyAddresses)
			bySet[sk] = ss
			setKeys = append(setKeys, sk)
		}
		if p := ports[pk]; p != nil {
			ss.Ports = append(ss.Ports, *p)
		}
	}
	if len(setKeys) == 0 {
		return nil
	}
	out := make([]corev1.EndpointSubset, 0, len(setKeys))
	for _, sk := range setKeys {
		sortPorts(bySet[sk].Ports)
		out = append(out, *bySet[sk])
	}
	sort.Slice(out, func(i, j int) bool { return subsetKey(out[i]) < subsetKey(out[j]) })
	return out
}

// portKey identifies an endpoint port by value.
func portKey(p *corev1.EndpointPort) string {
	ap := "-"
	if p.AppProtocol != nil {
		ap = *p.AppProtocol
	}
	return fmt.Sprintf("%s/%d/%s/%s", p.Name, p.Port, p.Protocol, ap)
}

func sortPorts(ps []corev1.EndpointPort) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Name != ps[j].Name {
			return ps[i].Name < ps[j].Name
		}
		if ps[i].Port != ps[j].Port {
			return ps[i].Port < ps[j].Port
		}
		return ps[i].Protocol < ps[j].Protocol
	})
}

func sortAddresses(as []corev1.EndpointAddress) {
	sort.Slice(as, func(i, j int) bool {
		if as[i].IP != as[j].IP {
			return as[i].IP < as[j].IP
		}
		return as[i].TargetRef.UID < as[j].TargetRef.UID
	})
}

func subsetKey(ss corev1.EndpointSubset) string {
	if len(ss.Ports) > 0 {
		return portKey(&ss.Ports[0])
	}
	return ""
}

func equalLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
