package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// serveUDP echoes id to every datagram received on addr, from inside ns.
func serveUDP(t *testing.T, h netns.NsHandle, addr, id string) {
	var pc net.PacketConn
	var err error
	inNetns(t, h, func() { pc, err = net.ListenPacket("udp", addr) })
	if err != nil {
		t.Fatalf("listen on udp %s: %v", addr, err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(id), from)
		}
	}()
}

// askUDP sends one datagram to addr from inside ns and returns the answer.
func askUDP(t *testing.T, h netns.NsHandle, addr string) (string, error) {
	var c net.Conn
	var err error
	inNetns(t, h, func() { c, err = net.Dial("udp", addr) })
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("q")); err != nil {
		return "", err
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	return string(buf[:n]), err
}

// The server creates kube-system/kube-dns with ClusterIP = ClusterDNS, UDP
// and TCP port 53 and no endpoints: DNS to it must reach the node's DNS
// server, not be refused. UDP services with endpoints are DNATed, without
// endpoints refused with ICMP port unreachable.
func TestUDPServicesAndKubeDNSWithoutEndpoints(t *testing.T) {
	ns, h := testNetns(t)
	nsExec(t, ns, "ip", "link", "add", "dummy0", "type", "veth", "peer", "name", "dummy1")
	nsExec(t, ns, "ip", "link", "set", "dummy1", "up")
	for _, a := range []string{"10.99.0.2/24", "10.99.0.10/24", "10.99.0.11/24"} {
		nsExec(t, ns, "ip", "addr", "add", a, "dev", "dummy0")
	}
	nsExec(t, ns, "ip", "link", "set", "dummy0", "up")
	nsExec(t, ns, "ip", "route", "add", "default", "dev", "dummy0")
	serveUDP(t, h, "10.99.0.10:53", "dns")
	serveUDP(t, h, "10.99.0.11:6000", "udp-endpoint")

	cfg := testConfig
	cfg.DNSTarget = netip.MustParseAddrPort("10.99.0.10:53")
	kubeDNS := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-dns"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.43.0.10", ClusterIPs: []string{"10.43.0.10"},
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP},
			}},
	}
	udp := svc("default", "udp", "10.43.0.60", 5000)
	udp.Spec.Ports[0].Protocol = corev1.ProtocolUDP
	udpNone := svc("default", "udp-none", "10.43.0.61", 5000)
	udpNone.Spec.Ports[0].Protocol = corev1.ProtocolUDP
	sl := slice("default", "udp", "udp-1", "", 6000, ep{ip: "10.99.0.11"})
	sl.Ports[0].Protocol = ptr.To(corev1.ProtocolUDP)

	p := newProxier(cfg, netlinkApplier{netnsFd: int(h)})
	if err := p.Sync([]*corev1.Service{kubeDNS, udp, udpNone}, []*discoveryv1.EndpointSlice{sl}); err != nil {
		t.Fatal(err)
	}
	if got, err := askUDP(t, h, "10.43.0.10:53"); err != nil || got != "dns" {
		t.Errorf("UDP to the kube-dns ClusterIP: got %q, %v; want the node's DNS server", got, err)
	}
	if got, err := askUDP(t, h, "10.43.0.60:5000"); err != nil || got != "udp-endpoint" {
		t.Errorf("UDP service: got %q, %v; want its endpoint", got, err)
	}
	// Rejected in the output hook, a local sender's write fails with EPERM
	// (from a pod, through forward, it gets ICMP port unreachable).
	start := time.Now()
	if _, err := askUDP(t, h, "10.43.0.61:5000"); !(errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPERM)) || time.Since(start) > time.Second {
		t.Errorf("UDP service without endpoints: got %v after %v, want refused at once", err, time.Since(start))
	}
}

// A UDP client that keeps one socket (a DNS resolver, a syslog or statsd
// client) must follow the service to its new endpoint when the old one
// goes: kube-proxy deletes the conntrack entries that still point at a
// removed UDP endpoint, which would otherwise keep the flow there.
func TestUDPFlowMovesOffARemovedEndpoint(t *testing.T) {
	ns, h := testNetns(t)
	nsExec(t, ns, "ip", "link", "add", "dummy0", "type", "veth", "peer", "name", "dummy1")
	nsExec(t, ns, "ip", "link", "set", "dummy1", "up")
	for _, a := range []string{"10.99.0.2/24", "10.99.0.10/24", "10.99.0.11/24"} {
		nsExec(t, ns, "ip", "addr", "add", a, "dev", "dummy0")
	}
	nsExec(t, ns, "ip", "link", "set", "dummy0", "up")
	nsExec(t, ns, "ip", "route", "add", "default", "dev", "dummy0")
	serveUDP(t, h, "10.99.0.10:6000", "a")
	serveUDP(t, h, "10.99.0.11:6000", "b")

	udp := svc("default", "udp", "10.43.0.60", 5000)
	udp.Spec.Ports[0].Protocol = corev1.ProtocolUDP
	udpSlice := func(ip string) []*discoveryv1.EndpointSlice {
		s := slice("default", "udp", "udp-1", "", 6000, ep{ip: ip})
		s.Ports[0].Protocol = ptr.To(corev1.ProtocolUDP)
		return []*discoveryv1.EndpointSlice{s}
	}
	p := newProxier(testConfig, netlinkApplier{netnsFd: int(h)})
	if err := p.Sync([]*corev1.Service{udp}, udpSlice("10.99.0.10")); err != nil {
		t.Fatal(err)
	}
	var c net.Conn
	var err error
	inNetns(t, h, func() { c, err = net.Dial("udp", "10.43.0.60:5000") })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ask := func() string {
		c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte("q")); err != nil {
			return err.Error()
		}
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil {
			return err.Error()
		}
		return string(buf[:n])
	}
	if got := ask(); got != "a" {
		t.Fatalf("before the change: got %q, want endpoint a", got)
	}
	if err := p.Sync([]*corev1.Service{udp}, udpSlice("10.99.0.11")); err != nil {
		t.Fatal(err)
	}
	if got := ask(); got != "b" {
		t.Errorf("the same UDP socket after its endpoint was replaced: got %q, want the new endpoint b", got)
	}

	// A client that sent before the service had endpoints (its first
	// datagrams went unNATed and conntrack remembered that) reaches the
	// service once it has some.
	late := svc("default", "late", "10.43.0.62", 5000)
	late.Spec.Ports[0].Protocol = corev1.ProtocolUDP
	inNetns(t, h, func() { c, err = net.Dial("udp", "10.43.0.62:5000") })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := ask(); got == "a" {
		t.Fatalf("a service that does not exist yet answered")
	}
	lateSlice := slice("default", "late", "late-1", "", 6000, ep{ip: "10.99.0.10"})
	lateSlice.Ports[0].Protocol = ptr.To(corev1.ProtocolUDP)
	if err := p.Sync([]*corev1.Service{udp, late}, append(udpSlice("10.99.0.11"), lateSlice)); err != nil {
		t.Fatal(err)
	}
	if got := ask(); got != "a" {
		t.Errorf("the same UDP socket once the service has an endpoint: got %q, want endpoint a", got)
	}
}

// conntrackRecorder is the fake at the conntrack seam.
type conntrackRecorder struct {
	recordingApplier
	cleared [][]staleFlow
}

func (r *conntrackRecorder) clearUDP(flows []staleFlow) error {
	r.cleared = append(r.cleared, flows)
	return nil
}

func TestStaleUDPFlowsAreClearedAfterTheTransaction(t *testing.T) {
	fake := &conntrackRecorder{}
	p := newProxier(testConfig, fake)
	udp := svc("default", "udp", "10.43.0.60", 5000)
	udp.Spec.Type = corev1.ServiceTypeNodePort
	udp.Spec.Ports[0].Protocol, udp.Spec.Ports[0].NodePort = corev1.ProtocolUDP, 30500
	tcp := svc("default", "tcp", "10.43.0.61", 80)
	slices := func(udpIPs ...string) []*discoveryv1.EndpointSlice {
		var eps []ep
		for _, ip := range udpIPs {
			eps = append(eps, ep{ip: ip})
		}
		s := slice("default", "udp", "udp-1", "", 6000, eps...)
		s.Ports[0].Protocol = ptr.To(corev1.ProtocolUDP)
		return []*discoveryv1.EndpointSlice{s, slice("default", "tcp", "tcp-1", "", 8080, ep{ip: "10.42.1.9"})}
	}
	a, b := netip.MustParseAddr("10.42.1.5"), netip.MustParseAddr("10.42.1.6")
	clusterIP := netip.MustParseAddrPort("10.43.0.60:5000")
	nodePort := netip.AddrPortFrom(netip.Addr{}, 30500)
	steps := []struct {
		name     string
		services []*corev1.Service
		slices   []*discoveryv1.EndpointSlice
		fail     bool
		want     []staleFlow
	}{
		{name: "first sync", services: []*corev1.Service{udp, tcp}, slices: slices("10.42.1.5", "10.42.1.6")},
		{name: "TCP endpoint gone: nothing to clear", services: []*corev1.Service{udp, tcp}, slices: slices("10.42.1.5", "10.42.1.6")[:1]},
		{name: "failed transaction: nothing cleared yet", services: []*corev1.Service{udp, tcp}, slices: slices("10.42.1.6"), fail: true},
		{name: "UDP endpoint gone", services: []*corev1.Service{udp, tcp}, slices: slices("10.42.1.6"),
			want: []staleFlow{{clusterIP, a}, {nodePort, a}}},
		{name: "UDP service gone", services: []*corev1.Service{tcp}, slices: slices("10.42.1.6"),
			want: []staleFlow{{clusterIP, b}, {nodePort, b}}},
		{name: "UDP service back, without endpoints", services: []*corev1.Service{udp, tcp}, slices: slices()},
		{name: "UDP service gets an endpoint: flows made before are not NATed", services: []*corev1.Service{udp, tcp}, slices: slices("10.42.1.6"),
			want: []staleFlow{{Frontend: clusterIP}, {Frontend: nodePort}}},
	}
	for _, s := range steps {
		fake.cleared = nil
		fake.fail = nil
		if s.fail {
			fake.fail = errors.New("boom")
		}
		if err := p.Sync(s.services, s.slices); (err != nil) != s.fail {
			t.Fatalf("%s: Sync: %v", s.name, err)
		}
		var got []staleFlow
		for _, c := range fake.cleared {
			got = append(got, c...)
		}
		if fmt.Sprint(got) != fmt.Sprint(s.want) {
			t.Errorf("%s: cleared %v, want %v", s.name, got, s.want)
		}
	}
}
