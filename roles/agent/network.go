package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mizzen-dev/mizzen/internal/apiclient"
	"github.com/mizzen-dev/mizzen/internal/dns"
	"github.com/mizzen-dev/mizzen/internal/join"
	"github.com/mizzen-dev/mizzen/internal/network"
	"github.com/mizzen-dev/mizzen/internal/proxy"
)

// clusterNet is the cluster-wide network configuration, parsed.
type clusterNet struct {
	clusterCIDR netip.Prefix
	clusterDNS  netip.Addr
	domain      string
	backend     network.Backend
}

// fetchCluster returns the cluster's network configuration: the server's
// own agent is given it, other agents ask the server (waiting while it
// cannot answer).
func fetchCluster(ctx context.Context, given *join.Cluster, client *apiclient.Client, log *logrus.Entry) (clusterNet, error) {
	c := given
	for delay := time.Second; c == nil; delay = min(2*delay, 30*time.Second) {
		body, err := client.Raw(ctx, http.MethodGet, join.ClusterPath, nil, "")
		if err == nil {
			c = &join.Cluster{}
			if err = json.Unmarshal(body, c); err != nil {
				return clusterNet{}, fmt.Errorf("cluster configuration from the server: %w", err)
			}
			break
		}
		if ctx.Err() != nil {
			return clusterNet{}, ctx.Err() // stopped: no warning
		}
		log.WithError(err).Warnf("cluster configuration from the server (retrying in %s)", delay)
		select {
		case <-ctx.Done():
			return clusterNet{}, ctx.Err()
		case <-time.After(delay):
		}
	}
	var out clusterNet
	var err error
	if out.clusterCIDR, err = netip.ParsePrefix(c.ClusterCIDR); err != nil {
		return out, fmt.Errorf("cluster CIDR %q: %w", c.ClusterCIDR, err)
	}
	if out.clusterDNS, err = netip.ParseAddr(c.ClusterDNS); err != nil {
		return out, fmt.Errorf("cluster DNS %q: %w", c.ClusterDNS, err)
	}
	out.domain, out.backend = c.ClusterDomain, network.Backend(c.NetworkBackend)
	if out.domain == "" {
		out.domain = "cluster.local"
	}
	return out, nil
}

// podNet is the kubelet's view of the pod network, which starts once the
// node has its podCIDR; the kubelet runs no pod before that.
type podNet struct {
	n atomic.Pointer[network.Network]
}

var (
	errNetworkNotReady = errors.New("the pod network is not ready")
	errNoPodCIDR       = errors.New("waiting for the node's podCIDR")
)

func (p *podNet) SetUp(ctx context.Context, id, netnsPath string) (netip.Addr, error) {
	n := p.n.Load()
	if n == nil {
		return netip.Addr{}, errNetworkNotReady
	}
	return n.SetUp(ctx, id, netnsPath)
}

func (p *podNet) IP(id string) netip.Addr {
	if n := p.n.Load(); n != nil {
		return n.IP(id)
	}
	return netip.Addr{}
}

func (p *podNet) TearDown(ctx context.Context, id string) error {
	if n := p.n.Load(); n != nil {
		return n.TearDown(ctx, id)
	}
	return nil
}

func (p *podNet) GC(live func(id string) bool, before time.Time) error {
	if n := p.n.Load(); n != nil {
		return n.GC(live, before)
	}
	return nil
}

// netDeps is what the node's networking reads: the informer caches and
// the node's identity.
type netDeps struct {
	cfg       Config
	dir       string
	cluster   clusterNet
	client    *apiclient.Client
	nodes     *apiclient.Informer[*corev1.Node]
	services  *apiclient.Informer[*corev1.Service]
	slices    *apiclient.Informer[*discoveryv1.EndpointSlice]
	podNet    *podNet
	dnsSource *cacheSource
	ready     chan struct{}         // closed once pods can get addresses
	notReady  atomic.Pointer[error] // why pods cannot get addresses yet
	nodesKick chan struct{}
	onReady   func() // called once pods can get addresses (may be nil)
	proxy     atomic.Pointer[proxy.Proxier]
	log       *logrus.Entry
}

// runNetwork waits for the node's podCIDR, then sets up the pod network
// and runs the route sync, the Service proxy and the DNS server until ctx
// ends.
func (d *netDeps) run(ctx context.Context) error {
	podCIDR, err := d.waitPodCIDR(ctx)
	if err != nil || !podCIDR.IsValid() {
		return err // ctx ended
	}
	n, err := network.New(network.Config{
		NodeName: d.cfg.NodeName, NodeIP: d.cfg.NodeIPs[0], PodCIDR: podCIDR,
		ClusterCIDR: d.cluster.clusterCIDR, Backend: d.cluster.backend,
		StateDir: filepath.Join(d.dir, "ipam"),
		Log:      d.log.WithField("component", "network"),
	})
	if err != nil {
		return err
	}
	if !d.start(ctx, n.Start) {
		return nil // ctx ended
	}
	d.notReady.Store(nil)
	if err := d.publish(ctx, n.Annotations()); err != nil {
		return err
	}
	d.podNet.n.Store(n)
	close(d.ready)
	if d.onReady != nil {
		d.onReady()
	}

	// A partial cache would replace the table without the services not
	// listed yet, answer NXDOMAIN for them, and remove routes to nodes
	// not listed yet: wait for the first lists, as kube-proxy does.
	for _, synced := range []func(context.Context) error{d.services.WaitSynced, d.slices.WaitSynced, d.nodes.WaitSynced} {
		if err := synced(ctx); err != nil {
			return nil // ctx ended
		}
	}
	gw := n.Gateway()
	dnsAddr, err := dnsAddress(gw)
	if err != nil {
		return err
	}
	server, err := dns.New(dns.Config{
		Domain: d.cluster.domain, Source: d.dnsSource,
		Listen: []string{dnsAddr.String()},
		// A host whose resolv.conf names the cluster DNS (a node that
		// is also a client of the cluster) would have it forward to
		// itself.
		Self: []string{netip.AddrPortFrom(d.cluster.clusterDNS, 53).String()},
		Log:  d.log.WithField("component", "dns"),
	})
	if err != nil {
		return err
	}
	px, err := proxy.New(proxy.Config{
		NodeName: d.cfg.NodeName, NodeIPs: d.cfg.NodeIPs, ClusterCIDR: d.cluster.clusterCIDR,
		ClusterDNS: d.cluster.clusterDNS, DNSTarget: dnsAddr,
		Log: d.log.WithField("component", "proxy"),
	})
	if err != nil {
		return err
	}
	d.proxy.Store(px)
	errs := make(chan error, 3)
	go func() { errs <- server.Run(ctx) }()
	go func() {
		errs <- px.Run(ctx, func() ([]*corev1.Service, []*discoveryv1.EndpointSlice) {
			return d.services.List(), d.slices.List()
		})
	}()
	go func() { errs <- d.syncRoutes(ctx, n) }()
	for range 3 {
		if err := <-errs; err != nil {
			return err
		}
		if ctx.Err() == nil {
			return errors.New("the node's networking stopped")
		}
	}
	return nil
}

// start starts the pod network, retrying failures (a busy xtables lock,
// a missing link) while the node reports why its network is not ready, as
// the kubelet waits for its CNI plugin; false when ctx ended first.
func (d *netDeps) start(ctx context.Context, start func(context.Context) error) bool {
	for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
		err := start(ctx)
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			return true
		}
		err = fmt.Errorf("pod network: %w", err)
		d.notReady.Store(&err)
		d.log.WithError(err).Warnf("pod network not started (retrying in %s)", delay)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
	}
}

// readyErr says why pods cannot get addresses yet (nil once they can).
func (d *netDeps) readyErr() error {
	select {
	case <-d.ready:
		return nil
	default:
	}
	if err := d.notReady.Load(); err != nil {
		return *err
	}
	return errNetworkNotReady
}

// dnsAddress picks where the node's DNS server listens: port 53 of the
// pod bridge's address, or, when something else holds that port, a free
// one (pods reach it through the proxy's DNAT either way).
func dnsAddress(gw netip.Addr) (netip.AddrPort, error) {
	for _, port := range []uint16{53, 0} {
		ap := netip.AddrPortFrom(gw, port)
		u, err := net.ListenPacket("udp", ap.String())
		if err != nil {
			continue
		}
		got := u.LocalAddr().(*net.UDPAddr).AddrPort()
		t, err := net.Listen("tcp", netip.AddrPortFrom(gw, got.Port()).String())
		u.Close()
		if err != nil {
			continue
		}
		t.Close()
		return netip.AddrPortFrom(gw, got.Port()), nil
	}
	return netip.AddrPort{}, fmt.Errorf("no port for the DNS server on %s", gw)
}

// waitPodCIDR waits until the node IPAM controller has given this node
// its spec.podCIDR (zero when ctx ended first).
func (d *netDeps) waitPodCIDR(ctx context.Context) (netip.Prefix, error) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	warned := time.Now()
	for {
		if n, ok := d.nodes.Get("", d.cfg.NodeName); ok && n.Spec.PodCIDR != "" {
			p, err := netip.ParsePrefix(n.Spec.PodCIDR)
			if err != nil {
				return netip.Prefix{}, fmt.Errorf("node podCIDR %q: %w", n.Spec.PodCIDR, err)
			}
			return p.Masked(), nil
		}
		if d.notReady.Load() == nil {
			err := errNoPodCIDR
			d.notReady.Store(&err)
		}
		if time.Since(warned) > 30*time.Second {
			d.log.Warn(errNoPodCIDR.Error())
			warned = time.Now()
		}
		select {
		case <-ctx.Done():
			return netip.Prefix{}, nil
		case <-tick.C:
		}
	}
}

// publish puts the network's annotations (the VXLAN endpoint) on the
// node, where the other nodes read them.
func (d *netDeps) publish(ctx context.Context, annotations map[string]string) error {
	if len(annotations) == 0 {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	if err != nil {
		return err
	}
	for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
		_, err = d.client.Patch(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: d.cfg.NodeName}}, types.MergePatchType, patch, "")
		if err == nil || ctx.Err() != nil {
			return nil
		}
		d.log.WithError(err).Warnf("annotate node (retrying in %s)", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

// syncRoutes keeps the routes to the other nodes' pods current.
func (d *netDeps) syncRoutes(ctx context.Context, n *network.Network) error {
	resync := time.NewTicker(time.Minute)
	defer resync.Stop()
	for {
		if err := n.SyncNodes(d.nodes.List()); err != nil {
			d.log.WithError(err).Warn("routes to other nodes")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.nodesKick:
		case <-resync.C:
			// Start again: it is idempotent, and puts back what others
			// removed or never saw (dockerd creating DOCKER-USER with
			// its FORWARD DROP after the agent started, a deleted bridge).
			if err := n.Start(ctx); err != nil && ctx.Err() == nil {
				d.log.WithError(err).Warn("pod network")
			}
		}
	}
}

// nodeChanged is the node informer's handler: routes follow nodes coming
// and going and their podCIDRs, addresses and network annotations, not
// their status heartbeats.
func (d *netDeps) nodeChanged(old, cur *corev1.Node) {
	if old != nil && cur != nil && !routesDiffer(old, cur) {
		return
	}
	select {
	case d.nodesKick <- struct{}{}:
	default:
	}
}

// serviceChanged is the service informer's handler.
func (d *netDeps) serviceChanged(old, cur *corev1.Service) {
	d.dnsSource.serviceChanged(old, cur)
	d.endpointsChanged()
}

// sliceChanged is the EndpointSlice informer's handler.
func (d *netDeps) sliceChanged(old, cur *discoveryv1.EndpointSlice) {
	d.dnsSource.sliceChanged(old, cur)
	d.endpointsChanged()
}

func (d *netDeps) endpointsChanged() {
	if p := d.proxy.Load(); p != nil {
		p.Changed()
	}
}

// routesDiffer reports whether a node's change matters to the routes to
// its pods.
func routesDiffer(a, b *corev1.Node) bool {
	if a.Spec.PodCIDR != b.Spec.PodCIDR || !slices.Equal(a.Spec.PodCIDRs, b.Spec.PodCIDRs) ||
		!slices.Equal(a.Status.Addresses, b.Status.Addresses) {
		return true
	}
	for _, m := range []map[string]string{a.Annotations, b.Annotations} {
		for k := range m {
			if strings.HasPrefix(k, "mizzen.io/") && a.Annotations[k] != b.Annotations[k] {
				return true
			}
		}
	}
	return false
}

// cacheSource answers the DNS server from the agent's informers, with
// indexes of EndpointSlices by service and of services by ClusterIP kept
// by the informers' handlers.
type cacheSource struct {
	services *apiclient.Informer[*corev1.Service]

	mu     sync.RWMutex
	slices map[string]map[string]*discoveryv1.EndpointSlice // "ns/service" -> slice name -> slice
	byIP   map[string]*corev1.Service
}

func newCacheSource() *cacheSource {
	return &cacheSource{slices: map[string]map[string]*discoveryv1.EndpointSlice{}, byIP: map[string]*corev1.Service{}}
}

func sliceService(es *discoveryv1.EndpointSlice) string {
	return es.Namespace + "/" + es.Labels[discoveryv1.LabelServiceName]
}

// sliceChanged is the EndpointSlice informer's handler.
func (s *cacheSource) sliceChanged(old, cur *discoveryv1.EndpointSlice) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old != nil {
		key := sliceService(old)
		delete(s.slices[key], old.Name)
		if len(s.slices[key]) == 0 {
			delete(s.slices, key)
		}
	}
	if cur != nil {
		key := sliceService(cur)
		if s.slices[key] == nil {
			s.slices[key] = map[string]*discoveryv1.EndpointSlice{}
		}
		s.slices[key][cur.Name] = cur
	}
}

// serviceChanged is the service informer's handler.
func (s *cacheSource) serviceChanged(old, cur *corev1.Service) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old != nil {
		for _, ip := range old.Spec.ClusterIPs {
			if o := s.byIP[ip]; o != nil && o.Namespace == old.Namespace && o.Name == old.Name {
				delete(s.byIP, ip)
			}
		}
	}
	if cur != nil {
		for _, ip := range cur.Spec.ClusterIPs {
			if ip != corev1.ClusterIPNone && ip != "" {
				s.byIP[ip] = cur
			}
		}
	}
}

func (s *cacheSource) Service(namespace, name string) (*corev1.Service, bool) {
	return s.services.Get(namespace, name)
}

func (s *cacheSource) EndpointSlices(namespace, service string) []*discoveryv1.EndpointSlice {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m := s.slices[namespace+"/"+service]
	out := make([]*discoveryv1.EndpointSlice, 0, len(m))
	for _, es := range m {
		out = append(out, es)
	}
	return out
}

// ServiceByClusterIP gives the DNS server PTR records for ClusterIPs.
func (s *cacheSource) ServiceByClusterIP(ip string) (*corev1.Service, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	svc, ok := s.byIP[ip]
	return svc, ok
}

// Cleanup removes what the agent set up on the host for the pod network
// and the Service proxy: the nftables table, the bridge, the VXLAN device,
// routes, Docker accept rules and the address allocations under dataDir.
func Cleanup(dataDir string, log *logrus.Entry) error {
	var errs []error
	if err := proxy.Cleanup(""); err != nil {
		errs = append(errs, fmt.Errorf("nftables table: %w", err))
	}
	ipam := filepath.Join(dataDir, "agent", "ipam")
	if err := network.Cleanup(network.Config{StateDir: ipam}); err != nil {
		errs = append(errs, fmt.Errorf("pod network: %w", err))
	}
	if err := os.RemoveAll(ipam); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		log.Info("removed the pod network and the Service proxy's rules")
	}
	return errors.Join(errs...)
}
