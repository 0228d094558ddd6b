package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	corev1 "k8s.io/api/core/v1"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// remote is what reaching one other node's pods needs.
type remote struct {
	name    string
	podCIDR netip.Prefix
	nodeIP  netip.Addr
	vtepMAC net.HardwareAddr // vxlan only
}

// remotes picks from nodes the ones this node routes to: not itself, with
// a pod CIDR inside the cluster CIDR, an underlay address of the pod
// CIDR's family and, for vxlan, a VTEP MAC.
func (n *Network) remotes(nodes []*corev1.Node) []remote {
	var out []remote
	for _, node := range nodes {
		if node == nil || node.Name == n.cfg.NodeName {
			continue
		}
		r, why := n.remoteOf(node)
		if why != "" {
			n.cfg.Log.WithField("node", node.Name).Debugf("No route to its pods: %s", why)
			continue
		}
		out = append(out, r)
	}
	return out
}

// remoteOf reads a Node; why says what is missing.
func (n *Network) remoteOf(node *corev1.Node) (r remote, why string) {
	r.name = node.Name
	cidrs := node.Spec.PodCIDRs
	if node.Spec.PodCIDR != "" {
		cidrs = append([]string{node.Spec.PodCIDR}, cidrs...)
	}
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Addr().Is4() == n.cfg.PodCIDR.Addr().Is4() {
			r.podCIDR = p.Masked()
			break
		}
	}
	if !r.podCIDR.IsValid() {
		return r, "no pod CIDR"
	}
	if r.podCIDR.Overlaps(n.cfg.PodCIDR) {
		return r, fmt.Sprintf("its pod CIDR %v overlaps ours", r.podCIDR)
	}
	if c := n.cfg.ClusterCIDR; c.IsValid() && (!c.Contains(r.podCIDR.Addr()) || r.podCIDR.Bits() < c.Bits()) {
		// A route to it could replace one of the host's own.
		return r, fmt.Sprintf("its pod CIDR %v is outside the cluster CIDR %v", r.podCIDR, c)
	}
	for _, a := range node.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && (!n.cfg.NodeIP.IsValid() || ip.Is4() == n.cfg.NodeIP.Is4()) {
			r.nodeIP = ip
			break
		}
	}
	if !r.nodeIP.IsValid() {
		if ip, err := netip.ParseAddr(node.Annotations[AnnotationPublicIP]); err == nil {
			r.nodeIP = ip
		} else {
			return r, "no InternalIP"
		}
	}
	if n.cfg.Backend == BackendVXLAN {
		mac, err := net.ParseMAC(node.Annotations[AnnotationVTEPMAC])
		if err != nil || len(mac) != 6 {
			return r, "no VTEP MAC annotation " + AnnotationVTEPMAC
		}
		r.vtepMAC = mac
	}
	return r, ""
}

// SyncNodes makes the routes to other nodes' pods match nodes, skipping
// this node and the nodes not yet routable. With vxlan, each remote node
// gets an FDB entry (its VTEP MAC to its InternalIP), a permanent neighbour
// (its pod CIDR's network address to its VTEP MAC) and an onlink route to
// its pod CIDR via that address; with host-gw, a route via its InternalIP.
// Entries of nodes gone or changed are removed; only routes tagged with
// mizzen's protocol number are ever touched.
func (n *Network) SyncNodes(nodes []*corev1.Node) error {
	h, err := handleAt(n.cfg.NetNS)
	if err != nil {
		return err
	}
	defer h.Close()
	want := n.remotes(nodes)
	routes := make([]*netlink.Route, 0, len(want))
	var vx netlink.Link
	if n.cfg.Backend == BackendVXLAN {
		if vx, err = h.LinkByName(n.cfg.VXLAN); err != nil {
			return fmt.Errorf("sync node routes: find %s (has Start run?): %w", n.cfg.VXLAN, err)
		}
		if err := n.syncVXLANNeighbours(h, vx, want); err != nil {
			return fmt.Errorf("sync node routes: %w", err)
		}
	}
	for _, r := range want {
		routes = append(routes, n.routeTo(r, vx))
	}
	if err := syncRoutes(h, routes, n.family()); err != nil {
		return fmt.Errorf("sync node routes: %w", err)
	}
	return nil
}

// routeTo is the route to r's pods.
func (n *Network) routeTo(r remote, vx netlink.Link) *netlink.Route {
	rt := &netlink.Route{
		Dst:      prefixNet(r.podCIDR),
		Protocol: routeProtocol,
		Table:    unix.RT_TABLE_MAIN,
	}
	if vx != nil {
		rt.LinkIndex = vx.Attrs().Index
		rt.Gw = r.podCIDR.Addr().AsSlice()
		rt.Flags = int(netlink.FLAG_ONLINK)
	} else {
		rt.Gw = r.nodeIP.AsSlice()
	}
	return rt
}

// family is the netlink family of the pod network.
func (n *Network) family() int {
	if n.cfg.PodCIDR.Addr().Is6() {
		return netlink.FAMILY_V6
	}
	return netlink.FAMILY_V4
}

// syncRoutes replaces the desired routes and deletes the other routes
// carrying mizzen's protocol number.
func syncRoutes(h *netlink.Handle, want []*netlink.Route, family int) error {
	filter := &netlink.Route{Protocol: routeProtocol, Table: unix.RT_TABLE_MAIN}
	have, err := dump(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(family, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	keep := map[string]bool{}
	var errs []error
	for _, rt := range want {
		keep[rt.Dst.String()] = true
		if err := h.RouteReplace(rt); err != nil {
			errs = append(errs, fmt.Errorf("route %v via %v: %w", rt.Dst, net.IP(rt.Gw), err))
		}
	}
	for _, rt := range have {
		if rt.Dst != nil && keep[rt.Dst.String()] {
			continue
		}
		if err := h.RouteDel(&rt); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %v: %w", rt.Dst, err))
		}
	}
	return errors.Join(errs...)
}

// syncVXLANNeighbours makes the FDB and neighbour entries of the VXLAN
// device match want.
func (n *Network) syncVXLANNeighbours(h *netlink.Handle, vx netlink.Link, want []remote) error {
	idx := vx.Attrs().Index
	fdbWant := map[string]bool{}   // mac|dst
	neighWant := map[string]bool{} // ip|mac
	var errs []error
	for _, r := range want {
		fdb := &netlink.Neigh{
			LinkIndex:    idx,
			Family:       unix.AF_BRIDGE,
			State:        netlink.NUD_PERMANENT,
			Flags:        netlink.NTF_SELF,
			IP:           r.nodeIP.AsSlice(),
			HardwareAddr: r.vtepMAC,
		}
		fdbWant[r.vtepMAC.String()+"|"+r.nodeIP.String()] = true
		if err := h.NeighSet(fdb); err != nil {
			errs = append(errs, fmt.Errorf("fdb entry %v -> %v: %w", r.vtepMAC, r.nodeIP, err))
		}
		neigh := &netlink.Neigh{
			LinkIndex:    idx,
			Family:       n.family(),
			State:        netlink.NUD_PERMANENT,
			Type:         unix.RTN_UNICAST,
			IP:           r.podCIDR.Addr().AsSlice(),
			HardwareAddr: r.vtepMAC,
		}
		neighWant[r.podCIDR.Addr().String()+"|"+r.vtepMAC.String()] = true
		if err := h.NeighSet(neigh); err != nil {
			errs = append(errs, fmt.Errorf("neighbour %v -> %v: %w", r.podCIDR.Addr(), r.vtepMAC, err))
		}
	}
	fdbs, err := dump(func() ([]netlink.Neigh, error) { return h.NeighList(idx, unix.AF_BRIDGE) })
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list fdb of %s: %w", n.cfg.VXLAN, err))...)
	}
	for _, e := range fdbs {
		if e.State&netlink.NUD_PERMANENT == 0 || e.IP == nil || fdbWant[e.HardwareAddr.String()+"|"+ipString(e.IP)] {
			continue
		}
		if err := h.NeighDel(&e); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete fdb entry %v -> %v: %w", e.HardwareAddr, e.IP, err))
		}
	}
	neighs, err := dump(func() ([]netlink.Neigh, error) { return h.NeighList(idx, n.family()) })
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list neighbours of %s: %w", n.cfg.VXLAN, err))...)
	}
	for _, e := range neighs {
		if e.State&netlink.NUD_PERMANENT == 0 || neighWant[ipString(e.IP)+"|"+e.HardwareAddr.String()] {
			continue
		}
		if err := h.NeighDel(&e); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete neighbour %v: %w", e.IP, err))
		}
	}
	return errors.Join(errs...)
}

// ipString formats a netlink IP the way netip does (no IPv4-in-IPv6 form).
func ipString(ip net.IP) string {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap().String()
}

// prefixNet converts p to a *net.IPNet.
func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
