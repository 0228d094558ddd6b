package proxy

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var testConfig = Config{
	NodeName:    "node-a",
	NodeIPs:     []netip.Addr{netip.MustParseAddr("192.168.1.10")},
	ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"),
	ClusterDNS:  netip.MustParseAddr("10.43.0.10"),
}

// svc builds a ClusterIP service with one TCP port per port number (named
// p<port> when there are several).
func svc(ns, name, clusterIP string, ports ...int32) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: clusterIP, ClusterIPs: []string{clusterIP}},
	}
	for _, p := range ports {
		sp := corev1.ServicePort{Protocol: corev1.ProtocolTCP, Port: p}
		if len(ports) > 1 {
			sp.Name = fmt.Sprintf("p%d", p)
		}
		s.Spec.Ports = append(s.Spec.Ports, sp)
	}
	return s
}

type ep struct {
	ip       string
	node     string
	notReady bool
	term     bool // serving but terminating (implies not ready)
}

// slice builds an IPv4 EndpointSlice of service svcName with one port.
func slice(ns, svcName, name, portName string, port int32, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svcName}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(port)}},
	}
	for _, e := range eps {
		node := e.node
		if node == "" {
			node = "node-b"
		}
		c := discoveryv1.EndpointConditions{Ready: ptr.To(!e.notReady && !e.term)}
		if e.term {
			c.Serving, c.Terminating = ptr.To(true), ptr.To(true)
		}
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{e.ip}, NodeName: ptr.To(node), Conditions: c})
	}
	return s
}
