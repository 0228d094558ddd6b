package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// podIfName is the name of the pod's interface inside its sandbox.
const podIfName = "eth0"

// hostVethName is the name of the host end of id's veth pair.
func hostVethName(id string) string {
	if len(id) > 12 {
		id = id[:12]
	}
	return hostVethPrefix + id
}

// SetUp gives the sandbox id, whose network namespace is at netnsPath
// (/proc/PID/ns/net), an address of the pod CIDR: a veth pair whose host
// end is on the bridge and whose other end is eth0 in the sandbox, with a
// default route via the gateway. The allocation is persisted before SetUp
// returns. Calling it again for the same id returns the same address and
// leaves a complete set-up untouched. Calls for one id (SetUp, TearDown)
// must not overlap; calls for different ids may.
func (n *Network) SetUp(ctx context.Context, id, netnsPath string) (netip.Addr, error) {
	if id == "" {
		return netip.Addr{}, errors.New("set up pod network: empty sandbox id")
	}
	if err := ctx.Err(); err != nil {
		return netip.Addr{}, err
	}
	ip, isNew, mtu, err := n.allocate(id)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("set up pod network of %s: %w", id, err)
	}
	if err := n.plumb(id, netnsPath, ip, mtu); err != nil {
		if isNew {
			n.mu.Lock()
			rerr := n.ipam.release(id)
			n.mu.Unlock()
			err = errors.Join(err, rerr)
		}
		return netip.Addr{}, fmt.Errorf("set up pod network of %s: %w", id, err)
	}
	n.cfg.Log.WithField("sandbox", id).Debugf("Pod network set up: %v", ip)
	return ip, nil
}

// allocate returns id's address (isNew when just handed out) and the MTU
// to give its interface.
func (n *Network) allocate(id string) (ip netip.Addr, isNew bool, mtu int, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ip, isNew, err = n.ipam.allocate(id, time.Now())
	mtu = n.mtu
	if mtu <= 0 {
		mtu = 1500 // Start has not run; a safe default
	}
	return ip, isNew, mtu, err
}

// plumb connects the sandbox to the bridge with address ip, reusing a
// complete previous set-up and replacing a partial one.
func (n *Network) plumb(id, netnsPath string, ip netip.Addr, mtu int) error {
	h, err := handleAt(n.cfg.NetNS)
	if err != nil {
		return err
	}
	defer h.Close()
	ns, err := netns.GetFromPath(netnsPath)
	if err != nil {
		return fmt.Errorf("open sandbox network namespace %s: %w", netnsPath, err)
	}
	defer ns.Close()
	if err := notHostNS(n.cfg.NetNS, ns); err != nil {
		return fmt.Errorf("sandbox network namespace %s: %w", netnsPath, err)
	}
	s, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("open netlink in %s: %w", netnsPath, err)
	}
	defer s.Close()
	br, err := h.LinkByName(n.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("find bridge %s (has Start run?): %w", n.cfg.Bridge, err)
	}

	name := hostVethName(id)
	hostEnd, err := h.LinkByName(name)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("find %s: %w", name, err)
	}
	podEnd, err := s.LinkByName(podIfName)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("find %s in the sandbox: %w", podIfName, err)
	}
	if hostEnd == nil || podEnd == nil || podEnd.Attrs().ParentIndex != hostEnd.Attrs().Index {
		// Missing or half-made: start over.
		if hostEnd != nil {
			if err := h.LinkDel(hostEnd); err != nil {
				return fmt.Errorf("delete stale %s: %w", name, err)
			}
		}
		if podEnd, err = s.LinkByName(podIfName); err == nil {
			if err := s.LinkDel(podEnd); err != nil {
				return fmt.Errorf("delete stale %s in the sandbox: %w", podIfName, err)
			}
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU = name, mtu
		veth := &netlink.Veth{LinkAttrs: attrs, PeerName: podIfName, PeerNamespace: netlink.NsFd(ns)}
		if err := h.LinkAdd(veth); err != nil {
			return fmt.Errorf("create veth %s: %w", name, err)
		}
		if hostEnd, err = h.LinkByName(name); err != nil {
			return fmt.Errorf("find %s: %w", name, err)
		}
		if podEnd, err = s.LinkByName(podIfName); err != nil {
			return fmt.Errorf("find %s in the sandbox: %w", podIfName, err)
		}
	}

	if hostEnd.Attrs().MasterIndex != br.Attrs().Index {
		if err := h.LinkSetMaster(hostEnd, br); err != nil {
			return fmt.Errorf("attach %s to %s: %w", name, n.cfg.Bridge, err)
		}
	}
	if err := h.LinkSetHairpin(hostEnd, true); err != nil {
		return fmt.Errorf("hairpin on %s: %w", name, err)
	}
	if err := h.LinkSetUp(hostEnd); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return n.configurePod(s, podEnd, ip, mtu)
}

// configurePod sets the sandbox's eth0 (MTU, address, up), lo up and the
// default route via the gateway.
func (n *Network) configurePod(s *netlink.Handle, eth0 netlink.Link, ip netip.Addr, mtu int) error {
	if eth0.Attrs().MTU != mtu {
		if err := s.LinkSetMTU(eth0, mtu); err != nil {
			return fmt.Errorf("set MTU of %s: %w", podIfName, err)
		}
	}
	if err := ensureAddr(s, eth0, netip.PrefixFrom(ip, n.cfg.PodCIDR.Bits())); err != nil {
		return err
	}
	if err := s.LinkSetUp(eth0); err != nil {
		return fmt.Errorf("set %s up: %w", podIfName, err)
	}
	lo, err := s.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo in the sandbox: %w", err)
	}
	if err := s.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	def := &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}
	if ip.Is6() {
		def = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	}
	route := &netlink.Route{LinkIndex: eth0.Attrs().Index, Dst: def, Gw: n.gateway.AsSlice()}
	if err := s.RouteReplace(route); err != nil {
		return fmt.Errorf("add default route via %v: %w", n.gateway, err)
	}
	return nil
}

// IP returns the address allocated to id, or the zero Addr if none is.
func (n *Network) IP(id string) netip.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	ip, _ := n.ipam.get(id)
	return ip
}

// TearDown deletes id's host veth if it is still there (which removes its
// pair) and releases id's address. It is idempotent and works after the
// sandbox's network namespace is gone.
func (n *Network) TearDown(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := n.deleteHostVeth(id); err != nil {
		return fmt.Errorf("tear down pod network of %s: %w", id, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.ipam.release(id); err != nil {
		return fmt.Errorf("tear down pod network of %s: %w", id, err)
	}
	return nil
}

// deleteHostVeth removes id's host veth, if any.
func (n *Network) deleteHostVeth(id string) error {
	h, err := handleAt(n.cfg.NetNS)
	if err != nil {
		return err
	}
	defer h.Close()
	return deleteLink(h, hostVethName(id))
}

// GC releases the addresses of sandboxes that live reports gone and that
// were allocated before before, so that a sandbox being set up concurrently
// (allocated, not yet known to the caller) keeps its address.
func (n *Network) GC(live func(id string) bool, before time.Time) error {
	n.mu.Lock()
	candidates := map[string]time.Time{}
	for id, al := range n.ipam.state.Allocations {
		if al.Allocated.Before(before) {
			candidates[id] = al.Allocated
		}
	}
	n.mu.Unlock()

	var errs []error
	for id, allocated := range candidates {
		if live(id) {
			continue
		}
		if err := n.deleteHostVeth(id); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, err)
		}
		n.mu.Lock()
		// Release only the allocation we judged, not one made since.
		if al, ok := n.ipam.state.Allocations[id]; ok && al.Allocated.Equal(allocated) {
			if err := n.ipam.release(id); err != nil {
				errs = append(errs, err)
			} else {
				n.cfg.Log.WithField("sandbox", id).Debugf("Released %v of a gone sandbox", al.IP)
			}
		}
		n.mu.Unlock()
	}
	return errors.Join(errs...)
}
