// Package network gives the pods of a node their addresses and connects them
// to the pods of other nodes: a bridge with the gateway of the node's pod
// CIDR, one veth pair per pod sandbox, an address allocator persisted on
// disk, and routes to the other nodes' pod CIDRs over VXLAN or plain routes
// (host-gw). It talks netlink directly; only Docker's DOCKER-USER iptables
// chain is edited with the iptables binary, as Docker itself does.
package network

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"
)

// Backend is how pod traffic crosses nodes.
type Backend string

const (
	// BackendVXLAN encapsulates pod traffic in VXLAN (VNI 1, UDP 8472, as
	// flannel does); it works across subnets.
	BackendVXLAN Backend = "vxlan"
	// BackendHostGW routes each remote pod CIDR via the remote node's
	// InternalIP; the nodes must share a layer-2 segment.
	BackendHostGW Backend = "host-gw"
)

// Annotations published on the node so that other nodes can reach its pods.
const (
	// AnnotationBackend names the node's Backend.
	AnnotationBackend = "mizzen.io/network-backend"
	// AnnotationVTEPMAC is the MAC address of the node's VXLAN device.
	AnnotationVTEPMAC = "mizzen.io/vxlan-vtep-mac"
	// AnnotationPublicIP is the node's underlay address (its NodeIP).
	AnnotationPublicIP = "mizzen.io/public-ip"
)

// Defaults for the Config fields left empty.
const (
	DefaultBridge = "mizzen0"
	DefaultVXLAN  = "mizzen.1"
	vxlanVNI      = 1
	vxlanPort     = 8472
	vxlanOverhead = 50
	// vxlanOverhead6 is the VXLAN overhead over an IPv6 underlay.
	vxlanOverhead6 = 70
	// routeProtocol tags the routes mizzen owns (rtm_protocol), so that
	// only those are ever removed.
	routeProtocol = 0x6d
	// hostVethPrefix starts the name of every host end of a pod veth.
	hostVethPrefix = "mz"
)

// Config describes the node's pod network.
type Config struct {
	// NodeName is this node's name; SyncNodes skips it.
	NodeName string
	// NodeIP is the node's InternalIP: the VXLAN underlay address, and the
	// next hop other nodes use with host-gw.
	NodeIP netip.Addr
	// PodCIDR is this node's spec.podCIDR, e.g. 10.42.1.0/24.
	PodCIDR netip.Prefix
	// ClusterCIDR holds every node's pod CIDR, e.g. 10.42.0.0/16.
	ClusterCIDR netip.Prefix
	// Backend is BackendVXLAN (the default) or BackendHostGW.
	Backend Backend
	// StateDir is where address allocations are persisted (DATA/agent/ipam).
	StateDir string
	// Bridge is the bridge's name, DefaultBridge if empty.
	Bridge string
	// VXLAN is the VXLAN device's name, DefaultVXLAN if empty.
	VXLAN string
	// MTU of the pod interfaces; 0 means the MTU of NodeIP's link, minus
	// the VXLAN overhead (50 bytes, 70 over IPv6) with the vxlan backend.
	MTU int
	// NetNS is the path of the network namespace that stands for the host
	// (tests run each "host" in its own); empty means the process's own.
	NetNS string
	// Log receives the component's logs.
	Log *logrus.Entry
}

// Network is the pod network of one node. Its methods are safe for
// concurrent use.
type Network struct {
	cfg     Config
	gateway netip.Addr
	vtepMAC net.HardwareAddr

	mu   sync.Mutex // guards ipam and mtu
	ipam *ipam
	mtu  int // resolved by Start when cfg.MTU is 0

	started atomic.Bool // Start succeeded once (later Starts log quietly)
}

// withDefaults fills the empty fields of cfg and checks the rest.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Backend == "" {
		cfg.Backend = BackendVXLAN
	}
	if cfg.Backend != BackendVXLAN && cfg.Backend != BackendHostGW {
		return cfg, fmt.Errorf("unknown network backend %q (want %q or %q)", cfg.Backend, BackendVXLAN, BackendHostGW)
	}
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if cfg.VXLAN == "" {
		cfg.VXLAN = DefaultVXLAN
	}
	if cfg.Log == nil {
		l := logrus.New()
		l.Out = nopWriter{}
		cfg.Log = logrus.NewEntry(l)
	}
	cfg.PodCIDR = cfg.PodCIDR.Masked()
	cfg.ClusterCIDR = cfg.ClusterCIDR.Masked()
	return cfg, nil
}

// New returns the network described by cfg, with the address allocations
// persisted under cfg.StateDir. It changes nothing on the host.
func New(cfg Config) (*Network, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if !cfg.PodCIDR.IsValid() {
		return nil, errors.New("network: no pod CIDR")
	}
	if cfg.ClusterCIDR.IsValid() && !cfg.ClusterCIDR.Contains(cfg.PodCIDR.Addr()) {
		return nil, fmt.Errorf("network: pod CIDR %v is outside the cluster CIDR %v", cfg.PodCIDR, cfg.ClusterCIDR)
	}
	if cfg.StateDir == "" {
		return nil, errors.New("network: no state directory")
	}
	a, fresh, err := loadIPAM(cfg.StateDir, cfg.PodCIDR)
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	if fresh {
		cfg.Log.Infof("Pod CIDR is now %v: previous address allocations dropped", cfg.PodCIDR)
	}
	return &Network{
		cfg:     cfg,
		gateway: cfg.PodCIDR.Addr().Next(),
		vtepMAC: stableMAC("vtep/" + cfg.NodeName),
		ipam:    a,
		mtu:     cfg.MTU,
	}, nil
}

// Gateway is the bridge's address, the pods' default gateway.
func (n *Network) Gateway() netip.Addr { return n.gateway }

// VTEPMAC is the MAC address of this node's VXLAN device.
func (n *Network) VTEPMAC() net.HardwareAddr { return n.vtepMAC }

// Annotations returns what to publish on this node's Node object so that
// other nodes can route to its pods.
func (n *Network) Annotations() map[string]string {
	a := map[string]string{AnnotationBackend: string(n.cfg.Backend)}
	if n.cfg.NodeIP.IsValid() {
		a[AnnotationPublicIP] = n.cfg.NodeIP.String()
	}
	if n.cfg.Backend == BackendVXLAN {
		a[AnnotationVTEPMAC] = n.vtepMAC.String()
	}
	return a
}

// stableMAC derives a stable, locally administered unicast MAC from seed:
// a re-created VXLAN device keeps the address other nodes know, and the
// bridge's address does not change as ports come and go.
func stableMAC(seed string) net.HardwareAddr {
	sum := sha256.Sum256([]byte("mizzen/" + seed))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&^0x01 | 0x02
	return mac
}

// nopWriter discards the logs of a Network built without a logger.
type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
