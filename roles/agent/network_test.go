package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func slice(name, service string, addrs ...string) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name,
		Labels: map[string]string{discoveryv1.LabelServiceName: service}}}
	for _, a := range addrs {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}})
	}
	return es
}

func TestCacheSourceIndexesSlicesByService(t *testing.T) {
	s := newCacheSource()
	a1, a2, b1 := slice("a-1", "a", "10.42.0.2"), slice("a-2", "a", "10.42.1.2"), slice("b-1", "b", "10.42.0.3")
	s.sliceChanged(nil, a1)
	s.sliceChanged(nil, a2)
	s.sliceChanged(nil, b1)
	if got := s.EndpointSlices("ns", "a"); len(got) != 2 {
		t.Fatalf("service a: %d slices, want 2", len(got))
	}
	// A slice moved to another service (its label changed) leaves the first.
	moved := slice("a-2", "b", "10.42.1.2")
	s.sliceChanged(a2, moved)
	if got := s.EndpointSlices("ns", "a"); len(got) != 1 || got[0].Name != "a-1" {
		t.Fatalf("service a after the move: %v", got)
	}
	if got := s.EndpointSlices("ns", "b"); len(got) != 2 {
		t.Fatalf("service b after the move: %d slices, want 2", len(got))
	}
	s.sliceChanged(a1, nil)
	if got := s.EndpointSlices("ns", "a"); len(got) != 0 || len(s.slices) != 1 {
		t.Fatalf("service a after the delete: %v (index %v)", got, s.slices)
	}
	if got := s.EndpointSlices("other", "b"); len(got) != 0 {
		t.Fatalf("another namespace: %v", got)
	}
}

func TestCacheSourceIndexesServicesByClusterIP(t *testing.T) {
	s := newCacheSource()
	svc := func(name string, ips ...string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Spec: corev1.ServiceSpec{ClusterIPs: ips}}
	}
	web := svc("web", "10.43.0.20")
	s.serviceChanged(nil, web)
	s.serviceChanged(nil, svc("headless", corev1.ClusterIPNone))
	if got, ok := s.ServiceByClusterIP("10.43.0.20"); !ok || got.Name != "web" {
		t.Fatalf("10.43.0.20: %v %v", got, ok)
	}
	if _, ok := s.ServiceByClusterIP(corev1.ClusterIPNone); ok {
		t.Fatal("None indexed as a ClusterIP")
	}
	// Deleted, then its address given to another service: the new one
	// stays when an old event of the first arrives late.
	s.serviceChanged(web, nil)
	other := svc("other", "10.43.0.20")
	s.serviceChanged(nil, other)
	s.serviceChanged(web, nil)
	if got, ok := s.ServiceByClusterIP("10.43.0.20"); !ok || got.Name != "other" {
		t.Fatalf("10.43.0.20 after reuse: %v %v", got, ok)
	}
}

func TestRoutesFollowNodeChangesThatMatter(t *testing.T) {
	base := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Annotations: map[string]string{"mizzen.io/vxlan-vtep-mac": "02:00:00:00:00:01"}},
		Spec:   corev1.NodeSpec{PodCIDR: "10.42.1.0/24", PodCIDRs: []string{"10.42.1.0/24"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.99.0.2"}}}}
	for _, tc := range []struct {
		name   string
		change func(n *corev1.Node)
		want   bool
	}{
		{"a heartbeat", func(n *corev1.Node) {
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		}, false},
		{"another annotation", func(n *corev1.Node) { n.Annotations["example.com/x"] = "y" }, false},
		{"the podCIDR", func(n *corev1.Node) { n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.42.2.0/24", []string{"10.42.2.0/24"} }, true},
		{"the address", func(n *corev1.Node) { n.Status.Addresses[0].Address = "10.99.0.3" }, true},
		{"the VTEP MAC", func(n *corev1.Node) { n.Annotations["mizzen.io/vxlan-vtep-mac"] = "02:00:00:00:00:02" }, true},
		{"a network annotation added", func(n *corev1.Node) { n.Annotations["mizzen.io/public-ip"] = "10.99.0.2" }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := base.DeepCopy()
			tc.change(cur)
			if got := routesDiffer(base, cur); got != tc.want {
				t.Fatalf("routesDiffer = %v, want %v", got, tc.want)
			}
		})
	}
}
