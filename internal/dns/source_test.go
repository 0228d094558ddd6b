package dns

import (
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// fakeSource is an in-memory Source (and ReverseSource) for tests.
type fakeSource struct {
	mu       sync.Mutex
	services map[string]*corev1.Service
	slices   map[string][]*discoveryv1.EndpointSlice
}

func newFakeSource() *fakeSource {
	return &fakeSource{services: map[string]*corev1.Service{}, slices: map[string][]*discoveryv1.EndpointSlice{}}
}

func (f *fakeSource) Service(ns, name string) (*corev1.Service, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.services[ns+"/"+name]
	return s, ok
}

func (f *fakeSource) EndpointSlices(ns, svc string) []*discoveryv1.EndpointSlice {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.slices[ns+"/"+svc]
}

func (f *fakeSource) ServiceByClusterIP(ip string) (*corev1.Service, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.services {
		for _, c := range s.Spec.ClusterIPs {
			if c == ip {
				return s, true
			}
		}
	}
	return nil, false
}

func (f *fakeSource) addService(s *corev1.Service) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.services[s.Namespace+"/"+s.Name] = s
}

func (f *fakeSource) addSlice(ns, svc string, sl *discoveryv1.EndpointSlice) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.slices[ns+"/"+svc] = append(f.slices[ns+"/"+svc], sl)
}

func service(ns, name string, clusterIPs []string, ports ...corev1.ServicePort) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIPs: clusterIPs, Ports: ports},
	}
	if len(clusterIPs) > 0 {
		s.Spec.ClusterIP = clusterIPs[0]
	}
	return s
}

func port(name string, proto corev1.Protocol, n int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Protocol: proto, Port: n}
}

type ep struct {
	addr     string
	hostname string
	ready    *bool
}

func slice(family discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...ep) *discoveryv1.EndpointSlice {
	sl := &discoveryv1.EndpointSlice{AddressType: family, Ports: ports}
	for _, e := range eps {
		d := discoveryv1.Endpoint{Addresses: []string{e.addr}, Conditions: discoveryv1.EndpointConditions{Ready: e.ready}}
		if e.hostname != "" {
			d.Hostname = ptr.To(e.hostname)
		}
		sl.Endpoints = append(sl.Endpoints, d)
	}
	return sl
}

func epPort(name string, proto corev1.Protocol, n int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: ptr.To(name), Protocol: ptr.To(proto), Port: ptr.To(n)}
}

// testSource is the cluster every answer test runs against.
func testSource() *fakeSource {
	f := newFakeSource()
	f.addService(service("default", "web", []string{"10.43.0.20"}, port("http", corev1.ProtocolTCP, 80), port("dns", corev1.ProtocolUDP, 53)))
	f.addService(service("default", "dual", []string{"10.43.0.21", "fd00::21"}, port("", "", 8080)))
	f.addService(service("default", "six", []string{"fd00::22"}, port("http", corev1.ProtocolTCP, 80)))

	db := service("data", "db", []string{corev1.ClusterIPNone}, port("pg", corev1.ProtocolTCP, 5432))
	f.addService(db)
	f.addSlice("data", "db", slice(discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{epPort("pg", corev1.ProtocolTCP, 15432)},
		ep{addr: "10.42.0.5", hostname: "db-0", ready: ptr.To(true)},
		ep{addr: "10.42.0.6", hostname: "db-1"},
		ep{addr: "10.42.0.7", ready: ptr.To(true)},
		ep{addr: "10.42.0.8", hostname: "db-2", ready: ptr.To(false)},
	))
	f.addSlice("data", "db", slice(discoveryv1.AddressTypeIPv6, []discoveryv1.EndpointPort{epPort("pg", corev1.ProtocolTCP, 15432)},
		ep{addr: "fd00:42::5", hostname: "db-0", ready: ptr.To(true)},
	))

	f.addService(service("data", "lonely", []string{corev1.ClusterIPNone}, port("pg", corev1.ProtocolTCP, 5432)))
	pub := service("data", "pub", []string{corev1.ClusterIPNone})
	pub.Spec.PublishNotReadyAddresses = true
	f.addService(pub)
	f.addSlice("data", "pub", slice(discoveryv1.AddressTypeIPv4, nil, ep{addr: "10.42.1.9", hostname: "p-0", ready: ptr.To(false)}))

	ext := service("default", "ext", nil)
	ext.Spec.Type = corev1.ServiceTypeExternalName
	ext.Spec.ExternalName = "web.default.svc.cluster.local"
	f.addService(ext)
	return f
}

// newTestServer builds a Server on src with the given upstreams (none: no
// forwarding) and its logs sent to the test.
func newTestServer(t testing.TB, src Source, upstreams ...string) *Server {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	if tt, ok := t.(*testing.T); ok {
		log.SetOutput(tt.Output())
		log.SetLevel(logrus.DebugLevel)
	}
	resolv := t.TempDir() + "/resolv.conf"
	if err := writeFile(resolv, "# none\n"); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Domain: "cluster.local", Source: src, Upstreams: upstreams, ResolvConf: resolv, Listen: []string{"127.0.0.1:0"}, Log: log.WithField("component", "dns")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rrs renders records one per string with single spaces, sorted.
func rrs(records []dns.RR) []string {
	out := make([]string, 0, len(records))
	for _, rr := range records {
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	sort.Strings(out)
	return out
}

// recorder is a dns.ResponseWriter that keeps what is written.
type recorder struct {
	remote net.Addr
	msg    *dns.Msg
}

func (r *recorder) LocalAddr() net.Addr       { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (r *recorder) RemoteAddr() net.Addr      { return r.remote }
func (r *recorder) WriteMsg(m *dns.Msg) error { r.msg = m; return nil }
func (r *recorder) Write(b []byte) (int, error) {
	r.msg = new(dns.Msg)
	return len(b), r.msg.Unpack(b)
}
func (r *recorder) Close() error        { return nil }
func (r *recorder) TsigStatus() error   { return nil }
func (r *recorder) TsigTimersOnly(bool) {}
func (r *recorder) Hijack()             {}
