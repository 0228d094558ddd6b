package admission

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

var svcKind = &registry.Kind{GVR: corev1.SchemeGroupVersion.WithResource("services"), Kind: "Service"}

func svc(name, typ, ip string, nodePorts ...int32) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceType(typ), ClusterIP: ip}}
	if len(nodePorts) == 0 {
		s.Spec.Ports = []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}
	}
	for i, np := range nodePorts {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: int32(80 + i), Protocol: corev1.ProtocolTCP, NodePort: np})
	}
	return s
}

func newAlloc(cidr string) *Services {
	a := NewServices(netip.MustParsePrefix(cidr), PortRange{Min: 30000, Max: 30002})
	a.ReserveFirst()
	a.Load(nil)
	return a
}

func TestAllocatesUniqueClusterIPsInRange(t *testing.T) {
	a := newAlloc("10.43.0.0/29") // 8 addresses: 6 usable, the first reserved
	seen := map[string]bool{}
	for i := 0; i < 5; i++ {
		s := svc("s"+string(rune('a'+i)), "ClusterIP", "")
		if _, err := a.Admit(context.Background(), registry.Create, svcKind, s, nil); err != nil {
			t.Fatalf("service %d: %v", i, err)
		}
		ip := netip.MustParseAddr(s.Spec.ClusterIP)
		if seen[ip.String()] || !netip.MustParsePrefix("10.43.0.0/29").Contains(ip) || ip.String() == "10.43.0.1" || ip.String() == "10.43.0.0" || ip.String() == "10.43.0.7" {
			t.Fatalf("bad or duplicate IP %s", ip)
		}
		seen[ip.String()] = true
		if len(s.Spec.ClusterIPs) != 1 || s.Spec.ClusterIPs[0] != s.Spec.ClusterIP {
			t.Fatalf("clusterIPs %v", s.Spec.ClusterIPs)
		}
	}
	_, err := a.Admit(context.Background(), registry.Create, svcKind, svc("full", "ClusterIP", ""), nil)
	if err == nil || !strings.Contains(err.Error(), "range is full") {
		t.Fatalf("full range: %v", err)
	}
}

func TestRequestedIPConflictsAndRange(t *testing.T) {
	a := newAlloc("10.43.0.0/16")
	if _, err := a.Admit(context.Background(), registry.Create, svcKind, svc("a", "ClusterIP", "10.43.0.50"), nil); err != nil {
		t.Fatal(err)
	}
	_, err := a.Admit(context.Background(), registry.Create, svcKind, svc("b", "ClusterIP", "10.43.0.50"), nil)
	if err == nil || !strings.Contains(err.Error(), "spec.clusterIPs[0]: Invalid value: \"10.43.0.50\": failed to allocate IP 10.43.0.50: provided IP is already allocated") {
		t.Fatalf("duplicate: %v", err)
	}
	_, err = a.Admit(context.Background(), registry.Create, svcKind, svc("c", "ClusterIP", "10.99.0.1"), nil)
	if err == nil || !strings.Contains(err.Error(), "is not in the valid range") {
		t.Fatalf("out of range: %v", err)
	}
	// Released on delete, the IP can be taken again.
	a.Release(svcKind, svc("a", "ClusterIP", "10.43.0.50"))
	if _, err := a.Admit(context.Background(), registry.Create, svcKind, svc("b", "ClusterIP", "10.43.0.50"), nil); err != nil {
		t.Fatal(err)
	}
}

func TestNodePortsAllocatedAndConflicting(t *testing.T) {
	a := newAlloc("10.43.0.0/16")
	s1 := svc("a", "NodePort", "", 0)
	if _, err := a.Admit(context.Background(), registry.Create, svcKind, s1, nil); err != nil {
		t.Fatal(err)
	}
	np := s1.Spec.Ports[0].NodePort
	if np < 30000 || np > 30002 {
		t.Fatalf("nodePort %d out of range", np)
	}
	_, err := a.Admit(context.Background(), registry.Create, svcKind, svc("b", "NodePort", "", np), nil)
	if err == nil || !strings.Contains(err.Error(), "provided port is already allocated") {
		t.Fatalf("duplicate nodePort: %v", err)
	}
	_, err = a.Admit(context.Background(), registry.Create, svcKind, svc("c", "NodePort", "", 40000), nil)
	if err == nil || !strings.Contains(err.Error(), "provided port is not in the valid range. The range of valid ports is 30000-30002") {
		t.Fatalf("nodePort out of range: %v", err)
	}
	// A failed create gives back the IP it took.
	before := len(a.ips)
	_, _ = a.Admit(context.Background(), registry.Create, svcKind, svc("d", "NodePort", "", np), nil)
	if len(a.ips) != before {
		t.Fatalf("failed admission leaked an IP: %d → %d", before, len(a.ips))
	}
	// Updating to ClusterIP frees the port.
	upd := s1.DeepCopy()
	upd.Spec.Type = corev1.ServiceTypeClusterIP
	upd.Spec.Ports[0].NodePort = 0
	r, err := a.Admit(context.Background(), registry.Update, svcKind, upd, s1)
	if err != nil {
		t.Fatal(err)
	}
	// Until the update is stored, the port stays taken.
	if _, err := a.Admit(context.Background(), registry.Create, svcKind, svc("e", "NodePort", "", np), nil); err == nil {
		t.Fatal("port freed before the update was committed")
	}
	r.Commit()
	if _, err := a.Admit(context.Background(), registry.Create, svcKind, svc("e", "NodePort", "", np), nil); err != nil {
		t.Fatalf("freed port not reusable: %v", err)
	}
}

func TestLoadRebuildsAllocations(t *testing.T) {
	a := NewServices(netip.MustParsePrefix("10.43.0.0/16"), PortRange{Min: 30000, Max: 30002})
	a.Load([]*corev1.Service{svc("a", "NodePort", "10.43.0.9", 30001)})
	if _, err := a.Admit(context.Background(), registry.Create, svcKind, svc("b", "ClusterIP", "10.43.0.9"), nil); err == nil {
		t.Fatal("loaded IP allocated twice")
	}
	if _, err := a.Admit(context.Background(), registry.Create, svcKind, svc("c", "NodePort", "", 30001), nil); err == nil {
		t.Fatal("loaded node port allocated twice")
	}
}

func TestAbortFreesOnlyWhatTheWriteTook(t *testing.T) {
	a := newAlloc("10.43.0.0/16")
	first := svc("a", "NodePort", "10.43.0.50", 30001)
	r, err := a.Admit(context.Background(), registry.Create, svcKind, first, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Commit()
	// The same object again (a create that will fail with AlreadyExists):
	// aborting it must not free the stored object's IP.
	again := svc("a", "ClusterIP", "10.43.0.50")
	r, err = a.Admit(context.Background(), registry.Create, svcKind, again, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Abort()
	if _, err := a.Admit(context.Background(), registry.Create, svcKind, svc("b", "ClusterIP", "10.43.0.50"), nil); err == nil {
		t.Fatal("aborted duplicate create freed the existing IP")
	}
	// A dry run (aborted) leaves its node port free.
	dry := svc("c", "NodePort", "", 30002)
	r, err = a.Admit(context.Background(), registry.Create, svcKind, dry, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Abort()
	if _, err := a.Admit(context.Background(), registry.Create, svcKind, svc("d", "NodePort", "", 30002), nil); err != nil {
		t.Fatalf("aborted reservation kept its port: %v", err)
	}
}

func TestAdmitWaitsForLoad(t *testing.T) {
	a := NewServices(netip.MustParsePrefix("10.43.0.0/16"), PortRange{Min: 30000, Max: 30002})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Admit(ctx, registry.Create, svcKind, svc("a", "ClusterIP", ""), nil); err == nil {
		t.Fatal("admitted before the allocations were loaded")
	}
	a.Load(nil)
	if _, err := a.Admit(context.Background(), registry.Create, svcKind, svc("a", "ClusterIP", ""), nil); err != nil {
		t.Fatal(err)
	}
}

func TestDynamicClusterIPsLeaveTheStaticBandForLast(t *testing.T) {
	a := newAlloc("10.43.0.0/24") // 254 usable; the lower 16 kept for requested addresses
	for i := 0; i < 254-16; i++ {
		s := svc(fmt.Sprintf("s%d", i), "ClusterIP", "")
		if _, err := a.Admit(context.Background(), registry.Create, svcKind, s, nil); err != nil {
			t.Fatalf("service %d: %v", i, err)
		}
		if ip := netip.MustParseAddr(s.Spec.ClusterIP); ip.As4()[3] <= 16 {
			t.Fatalf("service %d got %s from the static band while the upper band had room", i, ip)
		}
	}
	// The cluster DNS address is still free to be asked for.
	dns := svc("kube-dns", "ClusterIP", "10.43.0.10")
	if _, err := a.Admit(context.Background(), registry.Create, svcKind, dns, nil); err != nil {
		t.Fatalf("requested 10.43.0.10: %v", err)
	}
	// Then the lower band is used.
	s := svc("overflow", "ClusterIP", "")
	if _, err := a.Admit(context.Background(), registry.Create, svcKind, s, nil); err != nil {
		t.Fatalf("overflow: %v", err)
	}
	if ip := netip.MustParseAddr(s.Spec.ClusterIP); ip.As4()[3] > 16 || ip.String() == "10.43.0.1" || ip.String() == "10.43.0.10" {
		t.Fatalf("overflow got %s", ip)
	}
}
