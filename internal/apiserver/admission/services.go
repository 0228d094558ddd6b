// Package admission holds the write-time hooks that need cluster state:
// the Service ClusterIP and NodePort allocator.
package admission

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// PortRange is an inclusive range of node ports.
type PortRange struct{ Min, Max int }

// Services allocates ClusterIPs from the service CIDR and node ports from
// the node port range, refusing conflicts.
type Services struct {
	cidr  netip.Prefix
	ports PortRange

	// mu guards ips and nodePorts.
	// loaded is closed by Load: until then nothing is admitted, since the
	// existing allocations are unknown.
	loaded chan struct{}

	mu        sync.Mutex
	ips       map[netip.Addr]string // allocated IP → namespace/name
	nodePorts map[int]string        // protocol<<16|port → namespace/name
}

// NewServices returns an allocator; Load fills it from existing services.
func NewServices(cidr netip.Prefix, ports PortRange) *Services {
	return &Services{cidr: cidr.Masked(), ports: ports, loaded: make(chan struct{}), ips: map[netip.Addr]string{}, nodePorts: map[int]string{}}
}

// FirstIP returns the first usable address of the CIDR (the kubernetes
// Service's ClusterIP).
func (s *Services) FirstIP() netip.Addr { return s.cidr.Addr().Next() }

// Load records the allocations of existing services; it is called once,
// at start, and opens admission.
func (s *Services) Load(svcs []*corev1.Service) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer close(s.loaded)
	for _, svc := range svcs {
		owner := svc.Namespace + "/" + svc.Name
		for _, ip := range clusterIPs(svc) {
			if a, err := netip.ParseAddr(ip); err == nil {
				s.ips[a] = owner
			}
		}
		for _, p := range svc.Spec.Ports {
			if p.NodePort != 0 {
				s.nodePorts[portKey(p)] = owner
			}
		}
	}
}

func portKey(p corev1.ServicePort) int {
	proto := 0
	switch p.Protocol {
	case corev1.ProtocolUDP:
		proto = 1
	case corev1.ProtocolSCTP:
		proto = 2
	}
	return proto<<16 | int(p.NodePort)
}

func clusterIPs(svc *corev1.Service) []string {
	if len(svc.Spec.ClusterIPs) > 0 {
		return svc.Spec.ClusterIPs
	}
	if svc.Spec.ClusterIP != "" {
		return []string{svc.Spec.ClusterIP}
	}
	return nil
}

// reservation is what one admitted Service write allocated (freed on
// Abort) and gave up (freed on Commit).
type reservation struct {
	s        *Services
	ips      []netip.Addr
	ports    []int
	released []int
}

// Commit frees the node ports the write gave up.
func (r *reservation) Commit() {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	for _, p := range r.released {
		delete(r.s.nodePorts, p)
	}
}

// Abort frees what the write allocated.
func (r *reservation) Abort() {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.abortLocked()
}

func (r *reservation) abortLocked() {
	for _, a := range r.ips {
		delete(r.s.ips, a)
	}
	for _, p := range r.ports {
		delete(r.s.nodePorts, p)
	}
}

// Admit allocates what a created Service, or an update that needs new
// node ports, asks for. It waits until Load has run.
func (s *Services) Admit(ctx context.Context, op registry.Operation, k *registry.Kind, obj, old runtime.Object) (registry.Reservation, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil, nil
	}
	select {
	case <-s.loaded:
	case <-ctx.Done():
		return nil, apierrors.NewServiceUnavailable("the service IP allocator is not loaded yet")
	}
	var prev *corev1.Service
	if op == registry.Update {
		prev = old.(*corev1.Service)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &reservation{s: s}
	owner := svc.Namespace + "/" + svc.Name
	var errs field.ErrorList
	if prev == nil && svc.Spec.ClusterIP != corev1.ClusterIPNone {
		if err := s.allocateIP(svc, owner, r); err != nil {
			errs = append(errs, err)
		}
	}
	needPorts := svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		path := field.NewPath("spec", "ports").Index(i).Child("nodePort")
		if !needPorts {
			if p.NodePort != 0 && (prev == nil || !hasNodePort(prev, *p)) {
				errs = append(errs, field.Forbidden(path, "may not be used when `type` is 'ClusterIP'"))
			}
			continue
		}
		if p.NodePort != 0 {
			if prev != nil && hasNodePort(prev, *p) {
				continue
			}
			if int(p.NodePort) < s.ports.Min || int(p.NodePort) > s.ports.Max {
				errs = append(errs, field.Invalid(path, p.NodePort, fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", s.ports.Min, s.ports.Max)))
				continue
			}
			if _, used := s.nodePorts[portKey(*p)]; used {
				errs = append(errs, field.Invalid(path, p.NodePort, "provided port is already allocated"))
				continue
			}
		} else {
			n, ok := s.freePort(*p)
			if !ok {
				errs = append(errs, field.Invalid(path, p.NodePort, "range is full"))
				continue
			}
			p.NodePort = int32(n)
		}
		s.nodePorts[portKey(*p)] = owner
		r.ports = append(r.ports, portKey(*p))
	}
	if prev != nil {
		for _, p := range prev.Spec.Ports {
			if p.NodePort != 0 && !hasNodePort(svc, p) {
				r.released = append(r.released, portKey(p))
			}
		}
	}
	if len(errs) > 0 {
		r.abortLocked()
		return nil, apierrors.NewInvalid(k.GroupVersionKind().GroupKind(), svc.Name, errs)
	}
	return r, nil
}

func hasNodePort(svc *corev1.Service, p corev1.ServicePort) bool {
	for _, q := range svc.Spec.Ports {
		if q.NodePort == p.NodePort && q.Protocol == p.Protocol {
			return true
		}
	}
	return false
}

func (s *Services) allocateIP(svc *corev1.Service, owner string, r *reservation) *field.Error {
	path := field.NewPath("spec", "clusterIPs").Index(0)
	if ip := svc.Spec.ClusterIP; ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return field.Invalid(path, ip, "must be a valid IP address")
		}
		if !s.cidr.Contains(a) || a == s.cidr.Addr() || a == lastAddr(s.cidr) {
			return field.Invalid(path, ip, fmt.Sprintf("failed to allocate IP %s: the provided IP (%s) is not in the valid range. The range of valid IPs is %s", ip, ip, s.cidr))
		}
		o, used := s.ips[a]
		if used && o != owner {
			return field.Invalid(path, ip, fmt.Sprintf("failed to allocate IP %s: provided IP is already allocated", ip))
		}
		if !used {
			s.ips[a] = owner
			r.ips = append(r.ips, a)
		}
		svc.Spec.ClusterIPs = []string{ip}
		return nil
	}
	a, ok := s.freeIP()
	if !ok {
		return field.Invalid(path, "", "failed to allocate a serviceIP: range is full")
	}
	s.ips[a] = owner
	r.ips = append(r.ips, a)
	svc.Spec.ClusterIP = a.String()
	svc.Spec.ClusterIPs = []string{a.String()}
	return nil
}

// freeIP picks a random free address, skipping network and broadcast. Like
// Kubernetes (ServiceIPStaticSubrange), it takes addresses of the upper
// band first: the lower one (min(max(16, size/16), 256) addresses) is left
// for Services that ask for an address, such as the cluster DNS's, and is
// used only when the upper band is full.
func (s *Services) freeIP() (netip.Addr, bool) {
	bits := s.cidr.Addr().BitLen() - s.cidr.Bits()
	size := new(big.Int).Lsh(big.NewInt(1), uint(bits)).Int64()
	if bits > 20 {
		size = 1 << 20
	}
	if size < 4 {
		return netip.Addr{}, false
	}
	static := min(max(16, size/16), 256)
	// Offsets 1..size-2 are usable: [1, static] the lower band, the rest
	// the upper.
	if static >= size-2 {
		static = 0
	}
	for _, band := range [][2]int64{{static + 1, size - 2}, {1, static}} {
		lo, hi := band[0], band[1]
		if hi < lo {
			continue
		}
		n := hi - lo + 1
		start := rand.Int64N(n)
		for i := int64(0); i < n; i++ {
			a := addOffset(s.cidr.Addr(), lo+(start+i)%n)
			if _, used := s.ips[a]; !used && a != s.FirstIP() {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}

func (s *Services) freePort(p corev1.ServicePort) (int, bool) {
	n := s.ports.Max - s.ports.Min + 1
	start := rand.IntN(n)
	for i := 0; i < n; i++ {
		p.NodePort = int32(s.ports.Min + (start+i)%n)
		if _, used := s.nodePorts[portKey(p)]; !used {
			return int(p.NodePort), true
		}
	}
	return 0, false
}

// Release frees what a deleted service held.
func (s *Services) Release(_ *registry.Kind, obj runtime.Object) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	owner := svc.Namespace + "/" + svc.Name
	for _, ip := range clusterIPs(svc) {
		if a, err := netip.ParseAddr(ip); err == nil && s.ips[a] == owner {
			delete(s.ips, a)
		}
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 && s.nodePorts[portKey(p)] == owner {
			delete(s.nodePorts, portKey(p))
		}
	}
}

// ReserveFirst marks the first address as owned by default/kubernetes.
func (s *Services) ReserveFirst() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ips[s.FirstIP()]; !ok {
		s.ips[s.FirstIP()] = "default/kubernetes"
	}
}

func addOffset(a netip.Addr, off int64) netip.Addr {
	b := a.AsSlice()
	n := new(big.Int).SetBytes(b)
	n.Add(n, big.NewInt(off))
	out := n.FillBytes(make([]byte, len(b)))
	r, _ := netip.AddrFromSlice(out)
	return r
}

func lastAddr(p netip.Prefix) netip.Addr {
	bits := p.Addr().BitLen() - p.Bits()
	size := new(big.Int).Lsh(big.NewInt(1), uint(bits))
	size.Sub(size, big.NewInt(1))
	return addOffset(p.Addr(), size.Int64())
}
