package tables

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

func TestServiceRows(t *testing.T) {
	tcp := func(port, nodePort int32) corev1.ServicePort {
		return corev1.ServicePort{Port: port, NodePort: nodePort, Protocol: corev1.ProtocolTCP}
	}
	lbStatus := func(ingress ...corev1.LoadBalancerIngress) corev1.ServiceStatus {
		return corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: ingress}}
	}
	cases := []struct {
		name                       string
		spec                       corev1.ServiceSpec
		status                     corev1.ServiceStatus
		clusterIP, external, ports string
	}{
		{"cluster ip", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.43.0.10", ClusterIPs: []string{"10.43.0.10"},
			Ports: []corev1.ServicePort{tcp(80, 0)}}, corev1.ServiceStatus{},
			"10.43.0.10", "<none>", "80/TCP"},
		{"dual stack and several ports", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIPs: []string{"10.43.0.11", "fd00::11"},
			Ports: []corev1.ServicePort{tcp(53, 0), {Port: 53, Protocol: corev1.ProtocolUDP}}}, corev1.ServiceStatus{},
			"10.43.0.11", "<none>", "53/TCP,53/UDP"},
		{"headless without ports", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "None", ClusterIPs: []string{"None"}},
			corev1.ServiceStatus{}, "None", "<none>", "<none>"},
		{"cluster ip not yet allocated", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{tcp(80, 0)}},
			corev1.ServiceStatus{}, "<none>", "<none>", "80/TCP"},
		{"external ips", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIPs: []string{"10.43.0.12"},
			ExternalIPs: []string{"192.0.2.1", "192.0.2.2"}, Ports: []corev1.ServicePort{tcp(80, 0)}}, corev1.ServiceStatus{},
			"10.43.0.12", "192.0.2.1,192.0.2.2", "80/TCP"},
		{"node port", corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIPs: []string{"10.43.0.13"},
			Ports: []corev1.ServicePort{tcp(80, 30080), tcp(443, 30443)}}, corev1.ServiceStatus{},
			"10.43.0.13", "<none>", "80:30080/TCP,443:30443/TCP"},
		{"load balancer pending", corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.43.0.14"},
			Ports: []corev1.ServicePort{tcp(80, 31000)}}, corev1.ServiceStatus{},
			"10.43.0.14", "<pending>", "80:31000/TCP"},
		{"load balancer ready", corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.43.0.15"},
			Ports: []corev1.ServicePort{tcp(80, 31001)}},
			lbStatus(corev1.LoadBalancerIngress{IP: "198.51.100.9"}, corev1.LoadBalancerIngress{Hostname: "lb.example.com"}, corev1.LoadBalancerIngress{IP: "198.51.100.2"}),
			"10.43.0.15", "198.51.100.2,198.51.100.9,lb.example.com", "80:31001/TCP"},
		{"load balancer with external ips", corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.43.0.16"},
			ExternalIPs: []string{"192.0.2.7"}, Ports: []corev1.ServicePort{tcp(80, 31002)}},
			lbStatus(corev1.LoadBalancerIngress{IP: "198.51.100.3"}),
			"10.43.0.16", "198.51.100.3,192.0.2.7", "80:31002/TCP"},
		{"load balancer pending with external ips", corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.43.0.17"},
			ExternalIPs: []string{"192.0.2.8"}, Ports: []corev1.ServicePort{tcp(80, 31003)}}, corev1.ServiceStatus{},
			"10.43.0.17", "192.0.2.8", "80:31003/TCP"},
		{"external name", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}, corev1.ServiceStatus{},
			"<none>", "db.example.com", "<none>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			svc := &corev1.Service{ObjectMeta: meta("svc", 2*time.Minute), Spec: c.spec, Status: c.status}
			wantRow(t, servicesGR, svc, "svc", string(c.spec.Type), c.clusterIP, c.external, c.ports, "2m", "<none>")
		})
	}
}

func TestServiceSelector(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: meta("web", time.Hour), Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeClusterIP, ClusterIPs: []string{"10.43.0.20"},
		Ports:    []corev1.ServicePort{{Port: 8080, Protocol: corev1.ProtocolSCTP}},
		Selector: map[string]string{"tier": "web", "app": "shop"},
	}}
	wantRow(t, servicesGR, svc, "web", "ClusterIP", "10.43.0.20", "<none>", "8080/SCTP", "60m", "app=shop,tier=web")
}

func TestEndpointsRows(t *testing.T) {
	addrs := func(ips ...string) []corev1.EndpointAddress {
		var a []corev1.EndpointAddress
		for _, ip := range ips {
			a = append(a, corev1.EndpointAddress{IP: ip})
		}
		return a
	}
	cases := []struct {
		name    string
		subsets []corev1.EndpointSubset
		want    string
	}{
		{"none", nil, "<none>"},
		{"one", []corev1.EndpointSubset{{Addresses: addrs("10.42.0.5"), Ports: []corev1.EndpointPort{{Port: 8080}}}}, "10.42.0.5:8080"},
		{"ipv6", []corev1.EndpointSubset{{Addresses: addrs("fd00::5"), Ports: []corev1.EndpointPort{{Port: 443}}}}, "[fd00::5]:443"},
		{"headless without ports", []corev1.EndpointSubset{{Addresses: addrs("10.42.0.5", "10.42.0.6")}}, "10.42.0.5,10.42.0.6"},
		{"more than three", []corev1.EndpointSubset{
			{Addresses: addrs("10.42.0.1", "10.42.0.2"), Ports: []corev1.EndpointPort{{Port: 80}, {Port: 443}}},
			{Addresses: addrs("10.42.1.1")},
		}, "10.42.0.1:80,10.42.0.2:80,10.42.0.1:443 + 2 more..."},
		{"not ready only", []corev1.EndpointSubset{{NotReadyAddresses: addrs("10.42.0.7"), Ports: []corev1.EndpointPort{{Port: 80}}}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ep := &corev1.Endpoints{ObjectMeta: meta("web", 10*time.Second), Subsets: c.subsets}
			wantRow(t, endpointsGR, ep, "web", c.want, "10s")
		})
	}
}

func TestEndpointSliceRows(t *testing.T) {
	port := func(name string, n int32) discoveryv1.EndpointPort {
		p := discoveryv1.EndpointPort{Name: ptr(name), Port: ptr(n)}
		if n == 0 {
			p.Port = nil
		}
		if name == "" {
			p.Name = nil
		}
		return p
	}
	cases := []struct {
		name             string
		ports            []discoveryv1.EndpointPort
		endpoints        []discoveryv1.Endpoint
		wantPorts, wantE string
	}{
		{"empty", nil, nil, "<unset>", "<unset>"},
		{"one", []discoveryv1.EndpointPort{port("http", 80)},
			[]discoveryv1.Endpoint{{Addresses: []string{"10.42.0.5"}}}, "80", "10.42.0.5"},
		{"named and any port", []discoveryv1.EndpointPort{port("http", 0), port("", 0)},
			[]discoveryv1.Endpoint{{Addresses: []string{"10.42.0.5", "10.42.0.6"}}}, "http,*", "10.42.0.5,10.42.0.6"},
		{"more than three", []discoveryv1.EndpointPort{port("a", 1), port("b", 2), port("c", 3), port("d", 4)},
			[]discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1", "10.0.0.2"}}, {Addresses: []string{"10.0.0.3"}}, {Addresses: []string{"10.0.0.4", "10.0.0.5"}}},
			"1,2,3 + 1 more...", "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more..."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			es := &discoveryv1.EndpointSlice{ObjectMeta: meta("web-abcde", 3*time.Minute), AddressType: discoveryv1.AddressTypeIPv4,
				Ports: c.ports, Endpoints: c.endpoints}
			wantRow(t, endpointSlicesGR, es, "web-abcde", "IPv4", c.wantPorts, c.wantE, "3m")
		})
	}
}
