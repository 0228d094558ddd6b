package endpoints

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// MaxEndpointsPerSlice is how many endpoints a slice holds at most
// (kube-controller-manager's --max-endpoints-per-slice default).
const MaxEndpointsPerSlice = 100

// portSet is the endpoints of one address type that share a port set.
type portSet struct {
	ports []discoveryv1.EndpointPort
	eps   map[string]discoveryv1.Endpoint // by endpointKey
}

// syncSlices brings the service's slices in step with its pods: per
// address type and port set, endpoints stay in the slice that holds them,
// new ones fill free room before new slices are created, and a slice is
// written only when its content changes.
func (c *Controller) syncSlices(ctx context.Context, svc *corev1.Service, pods []*corev1.Pod) error {
	existing := c.serviceSlices(svc.Namespace, svc.Name)
	w := &sliceWriter{c: c, svc: svc}
	byType := map[discoveryv1.AddressType][]*discoveryv1.EndpointSlice{}
	families := serviceFamilies(svc)
	wanted := map[discoveryv1.AddressType]bool{}
	for _, f := range families {
		wanted[addressType(f)] = true
	}
	for _, s := range existing {
		if !ownedBy(s, svc) || !wanted[s.AddressType] {
			w.delete(ctx, s)
			continue
		}
		byType[s.AddressType] = append(byType[s.AddressType], s)
	}
	for _, f := range families {
		at := addressType(f)
		w.reconcile(ctx, at, desiredSlices(svc, pods, f, c.zone), byType[at])
	}
	return w.finish(ctx)
}

// desiredSlices returns the endpoints a service should have of one IP
// family, by port-set key.
func desiredSlices(svc *corev1.Service, pods []*corev1.Pod, family corev1.IPFamily, zone func(node string) *string) map[string]*portSet {
	out := map[string]*portSet{}
	for _, pod := range pods {
		if !shouldPodBeInEndpoints(pod, true) {
			continue
		}
		ips := podIPs(pod, family)
		if len(ips) == 0 {
			continue
		}
		serving := podReady(pod)
		terminating := pod.DeletionTimestamp != nil
		ready := svc.Spec.PublishNotReadyAddresses || (serving && !terminating)
		ep := discoveryv1.Endpoint{
			Addresses:  ips[:1],
			Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
			TargetRef:  podRef(pod),
		}
		if pod.Spec.NodeName != "" {
			n := pod.Spec.NodeName
			ep.NodeName, ep.Zone = &n, zone(n)
		}
		if shouldSetHostname(pod, svc) {
			h := pod.Spec.Hostname
			ep.Hostname = &h
		}
		var ports []discoveryv1.EndpointPort
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			num, err := findPort(pod, sp)
			if err != nil {
				continue
			}
			name, proto := sp.Name, protocol(sp)
			ports = append(ports, discoveryv1.EndpointPort{Name: &name, Port: &num, Protocol: &proto, AppProtocol: sp.AppProtocol})
		}
		k := slicePortKey(ports)
		ps, ok := out[k]
		if !ok {
			ps = &portSet{ports: ports, eps: map[string]discoveryv1.Endpoint{}}
			out[k] = ps
		}
		ps.eps[endpointKey(ep)] = ep
	}
	return out
}

// zone returns the topology zone of a node, if it has one.
func (c *Controller) zone(node string) *string {
	n, ok := c.nodes.Get("", node)
	if !ok {
		return nil
	}
	z, ok := n.Labels[corev1.LabelTopologyZone]
	if !ok {
		return nil
	}
	return &z
}

// sliceWriter makes a sync's slice writes, remembering the first error
// and the newest revision written.
type sliceWriter struct {
	c   *Controller
	svc *corev1.Service
	err error
	rv  runtime.Object // the written object of the newest resourceVersion
}

// reconcile writes the slices of one address type: endpoints stay where
// they are, the rest fill free room and then new slices of at most
// MaxEndpointsPerSlice; emptied slices and slices of unwanted port sets go.
func (w *sliceWriter) reconcile(ctx context.Context, at discoveryv1.AddressType, desired map[string]*portSet, existing []*discoveryv1.EndpointSlice) {
	sort.Slice(existing, func(i, j int) bool { return existing[i].Name < existing[j].Name })
	if len(desired) == 0 {
		// A service without endpoints keeps one placeholder slice.
		var keep *discoveryv1.EndpointSlice
		for _, s := range existing {
			if keep == nil && len(s.Endpoints) == 0 && len(s.Ports) == 0 {
				keep = s
				continue
			}
			w.delete(ctx, s)
		}
		if keep == nil {
			w.create(ctx, w.newSlice(at, nil, nil))
		} else {
			w.update(ctx, keep, nil)
		}
		return
	}
	placed := map[string]bool{}
	plan := map[*discoveryv1.EndpointSlice][]discoveryv1.Endpoint{}
	var kept []*discoveryv1.EndpointSlice
	for _, s := range existing {
		ps := desired[slicePortKey(s.Ports)]
		if ps == nil {
			w.delete(ctx, s)
			continue
		}
		eps := []discoveryv1.Endpoint{}
		for _, ep := range s.Endpoints {
			k := endpointKey(ep)
			if want, ok := ps.eps[k]; ok && !placed[k] && len(eps) < MaxEndpointsPerSlice {
				eps = append(eps, want)
				placed[k] = true
			}
		}
		plan[s] = eps
		kept = append(kept, s)
	}
	keys := make([]string, 0, len(desired))
	for k := range desired {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, pk := range keys {
		ps := desired[pk]
		var rest []string
		for k := range ps.eps {
			if !placed[k] {
				rest = append(rest, k)
			}
		}
		sort.Strings(rest)
		for _, s := range kept {
			for len(rest) > 0 && slicePortKey(s.Ports) == pk && len(plan[s]) < MaxEndpointsPerSlice {
				plan[s] = append(plan[s], ps.eps[rest[0]])
				rest = rest[1:]
			}
		}
		for len(rest) > 0 {
			n := min(len(rest), MaxEndpointsPerSlice)
			eps := make([]discoveryv1.Endpoint, 0, n)
			for _, k := range rest[:n] {
				eps = append(eps, ps.eps[k])
			}
			rest = rest[n:]
			w.create(ctx, w.newSlice(at, ps.ports, eps))
		}
	}
	for _, s := range kept {
		if len(plan[s]) == 0 {
			w.delete(ctx, s)
			continue
		}
		w.update(ctx, s, plan[s])
	}
}

// newSlice returns a slice of the service to create.
func (w *sliceWriter) newSlice(at discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps []discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	if ports == nil {
		ports = []discoveryv1.EndpointPort{}
	}
	if eps == nil {
		eps = []discoveryv1.Endpoint{}
	}
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: w.svc.Name + "-", Namespace: w.svc.Namespace,
			Labels:          sliceLabels(w.svc),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(w.svc, corev1.SchemeGroupVersion.WithKind("Service"))},
		},
		AddressType: at, Endpoints: eps, Ports: ports,
	}
}

func (w *sliceWriter) create(ctx context.Context, s *discoveryv1.EndpointSlice) {
	if w.err != nil {
		return
	}
	got, err := w.c.client.Create(ctx, s)
	if apierrors.IsForbidden(err) {
		return // the namespace is terminating
	}
	if err != nil {
		w.err = fmt.Errorf("create endpointslice for service %s/%s: %w", w.svc.Namespace, w.svc.Name, err)
		return
	}
	w.written(got)
}

// update writes s with eps when that changes it (or its labels).
func (w *sliceWriter) update(ctx context.Context, s *discoveryv1.EndpointSlice, eps []discoveryv1.Endpoint) {
	if w.err != nil {
		return
	}
	labels := sliceLabels(w.svc)
	if equalLabels(s.Labels, labels) && len(s.Endpoints) == len(eps) &&
		(len(eps) == 0 || apiequality.Semantic.DeepEqual(s.Endpoints, eps)) {
		return
	}
	n := s.DeepCopy()
	n.Labels, n.Endpoints = labels, eps
	if n.Ports == nil {
		n.Ports = []discoveryv1.EndpointPort{}
	}
	if n.Endpoints == nil {
		n.Endpoints = []discoveryv1.Endpoint{}
	}
	got, err := w.c.client.Update(ctx, n)
	if err != nil {
		w.err = fmt.Errorf("update endpointslice %s/%s: %w", s.Namespace, s.Name, err)
		return
	}
	w.written(got)
}

func (w *sliceWriter) delete(ctx context.Context, s *discoveryv1.EndpointSlice) {
	if w.err != nil {
		return
	}
	if err := w.c.client.Delete(ctx, s, nil); err != nil && !apierrors.IsNotFound(err) {
		w.err = fmt.Errorf("delete endpointslice %s/%s: %w", s.Namespace, s.Name, err)
	}
}

func (w *sliceWriter) written(obj runtime.Object) {
	if w.rv == nil || resourceVersion(obj) > resourceVersion(w.rv) {
		w.rv = obj
	}
}

// finish returns the first error, or waits until the cache has seen the
// writes.
func (w *sliceWriter) finish(ctx context.Context) error {
	if w.err != nil || w.rv == nil {
		return w.err
	}
	return waitFor(ctx, w.c.slices.Res, w.rv)
}

// sliceLabels returns a service's labels plus the slice labels
// Kubernetes sets.
func sliceLabels(svc *corev1.Service) map[string]string {
	out := map[string]string{}
	for k, v := range svc.Labels {
		if k != discoveryv1.LabelServiceName && k != discoveryv1.LabelManagedBy && k != headlessLabel {
			out[k] = v
		}
	}
	out[discoveryv1.LabelServiceName] = svc.Name
	out[discoveryv1.LabelManagedBy] = ControllerName
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		out[headlessLabel] = ""
	}
	return out
}

func ownedBy(s *discoveryv1.EndpointSlice, svc *corev1.Service) bool {
	for _, o := range s.OwnerReferences {
		if o.UID == svc.UID && o.Kind == "Service" && o.Controller != nil && *o.Controller {
			return true
		}
	}
	return false
}

func addressType(f corev1.IPFamily) discoveryv1.AddressType {
	if f == corev1.IPv6Protocol {
		return discoveryv1.AddressTypeIPv6
	}
	return discoveryv1.AddressTypeIPv4
}

// slicePortKey identifies a set of slice ports regardless of order.
func slicePortKey(ports []discoveryv1.EndpointPort) string {
	keys := make([]string, 0, len(ports))
	for _, p := range ports {
		ep := corev1.EndpointPort{AppProtocol: p.AppProtocol}
		if p.Name != nil {
			ep.Name = *p.Name
		}
		if p.Port != nil {
			ep.Port = *p.Port
		}
		if p.Protocol != nil {
			ep.Protocol = *p.Protocol
		}
		keys = append(keys, portKey(&ep))
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

// endpointKey identifies a slice endpoint: its pod, else its addresses.
func endpointKey(ep discoveryv1.Endpoint) string {
	if ep.TargetRef != nil && ep.TargetRef.UID != "" {
		return string(ep.TargetRef.UID)
	}
	return strings.Join(ep.Addresses, ",")
}
