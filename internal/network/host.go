package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Start creates the bridge, the VXLAN device (vxlan backend) and the
// forwarding settings and firewall rules pod traffic needs, or fixes them if
// they exist. It is idempotent and leaves running pods undisturbed.
func (n *Network) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h, err := handleAt(n.cfg.NetNS)
	if err != nil {
		return err
	}
	defer h.Close()
	underlay, mtu, err := n.underlay(h)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.mtu = mtu
	n.mu.Unlock()
	if err := n.ensureBridge(h, mtu); err != nil {
		return err
	}
	n.reattach(h)
	if n.cfg.Backend == BackendVXLAN {
		if err := n.ensureVXLAN(h, underlay, mtu); err != nil {
			return err
		}
	} else if err := deleteLink(h, n.cfg.VXLAN); err != nil {
		return err
	}
	err = inNS(n.cfg.NetNS, func() error {
		if err := n.ensureSysctls(); err != nil {
			return err
		}
		return ensureDockerUser(n.cfg.ClusterCIDR, n.cfg.Log)
	})
	if err != nil {
		return err
	}
	log := n.cfg.Log.WithField("bridge", n.cfg.Bridge)
	if n.started.Swap(true) {
		log.Debugf("Pod network checked: %s backend, gateway %v, MTU %d", n.cfg.Backend, n.gateway, mtu)
	} else {
		log.Infof("Pod network ready: %s backend, gateway %v, MTU %d", n.cfg.Backend, n.gateway, mtu)
	}
	return nil
}

// underlay finds the link holding NodeIP and the pod MTU.
func (n *Network) underlay(h *netlink.Handle) (netlink.Link, int, error) {
	var link netlink.Link
	if n.cfg.NodeIP.IsValid() {
		addrs, err := dump(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_ALL) })
		if err != nil {
			return nil, 0, fmt.Errorf("list addresses: %w", err)
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == n.cfg.NodeIP {
				if link, err = h.LinkByIndex(a.LinkIndex); err != nil {
					return nil, 0, fmt.Errorf("find link of node IP %v: %w", n.cfg.NodeIP, err)
				}
				break
			}
		}
	}
	if link == nil && n.cfg.Backend == BackendVXLAN {
		if !n.cfg.NodeIP.IsValid() {
			return nil, 0, errors.New("the vxlan backend needs the node IP as its underlay address")
		}
		return nil, 0, fmt.Errorf("node IP %v is on no link: vxlan needs it as its underlay address", n.cfg.NodeIP)
	}
	if n.cfg.MTU > 0 {
		return link, n.cfg.MTU, nil
	}
	mtu := 1500
	if link != nil {
		mtu = link.Attrs().MTU
	}
	if n.cfg.Backend == BackendVXLAN {
		mtu -= vxlanOverhead
		if n.cfg.NodeIP.Unmap().Is6() {
			mtu -= vxlanOverhead6 - vxlanOverhead // a 40-byte outer header, not 20
		}
	}
	return link, mtu, nil
}

// ensureBridge creates or fixes the bridge: up, MTU, the gateway address.
func (n *Network) ensureBridge(h *netlink.Handle, mtu int) error {
	br, err := h.LinkByName(n.cfg.Bridge)
	switch {
	case isNotFound(err):
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU = n.cfg.Bridge, mtu
		attrs.HardwareAddr = stableMAC("bridge/" + n.cfg.NodeName)
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			return fmt.Errorf("create bridge %s: %w", n.cfg.Bridge, err)
		}
		if br, err = h.LinkByName(n.cfg.Bridge); err != nil {
			return fmt.Errorf("find bridge %s: %w", n.cfg.Bridge, err)
		}
	case err != nil:
		return fmt.Errorf("find bridge %s: %w", n.cfg.Bridge, err)
	case br.Type() != "bridge":
		return fmt.Errorf("link %s exists and is a %s, not a bridge", n.cfg.Bridge, br.Type())
	}
	if br.Attrs().MTU != mtu {
		if err := h.LinkSetMTU(br, mtu); err != nil {
			return fmt.Errorf("set MTU of %s: %w", n.cfg.Bridge, err)
		}
	}
	if err := ensureAddr(h, br, netip.PrefixFrom(n.gateway, n.cfg.PodCIDR.Bits())); err != nil {
		return err
	}
	if err := h.LinkSetUp(br); err != nil {
		return fmt.Errorf("set %s up: %w", n.cfg.Bridge, err)
	}
	return nil
}

// reattach puts the host veths of allocated sandboxes back on the bridge
// when they are off it (the bridge was re-created), so that running pods
// keep their network. Failures are logged: Start goes on.
func (n *Network) reattach(h *netlink.Handle) {
	br, err := h.LinkByName(n.cfg.Bridge)
	if err != nil {
		n.cfg.Log.WithError(err).Warnf("Find bridge %s to reattach pods", n.cfg.Bridge)
		return
	}
	n.mu.Lock()
	ids := make([]string, 0, len(n.ipam.state.Allocations))
	for id := range n.ipam.state.Allocations {
		ids = append(ids, id)
	}
	n.mu.Unlock()
	for _, id := range ids {
		name := hostVethName(id)
		veth, err := h.LinkByName(name)
		if err != nil || veth.Attrs().MasterIndex == br.Attrs().Index {
			continue // gone (GC releases it) or in place
		}
		err = h.LinkSetMaster(veth, br)
		if err == nil {
			err = h.LinkSetHairpin(veth, true)
		}
		if err == nil {
			err = h.LinkSetUp(veth)
		}
		if err != nil {
			n.cfg.Log.WithError(err).WithField("sandbox", id).Warnf("Reattach %s to %s", name, n.cfg.Bridge)
			continue
		}
		n.cfg.Log.WithField("sandbox", id).Infof("Reattached %s to %s", name, n.cfg.Bridge)
	}
}

// ensureVXLAN creates or fixes the VXLAN device, re-creating it when its
// VNI, port, underlay or source address differ from what is wanted.
func (n *Network) ensureVXLAN(h *netlink.Handle, underlay netlink.Link, mtu int) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU, attrs.HardwareAddr = n.cfg.VXLAN, mtu, n.vtepMAC
	want := &netlink.Vxlan{
		LinkAttrs:    attrs,
		VxlanId:      vxlanVNI,
		VtepDevIndex: underlay.Attrs().Index,
		SrcAddr:      net.IP(n.cfg.NodeIP.AsSlice()),
		Port:         vxlanPort,
		Learning:     false,
	}
	link, err := h.LinkByName(n.cfg.VXLAN)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("find %s: %w", n.cfg.VXLAN, err)
	}
	if link != nil {
		if !sameVXLAN(link, want) {
			n.cfg.Log.Infof("Re-creating %s: its settings changed", n.cfg.VXLAN)
			if err := h.LinkDel(link); err != nil {
				return fmt.Errorf("delete %s: %w", n.cfg.VXLAN, err)
			}
			link = nil
		}
	}
	if link == nil {
		if err := h.LinkAdd(want); err != nil {
			return fmt.Errorf("create %s: %w", n.cfg.VXLAN, err)
		}
		if link, err = h.LinkByName(n.cfg.VXLAN); err != nil {
			return fmt.Errorf("find %s: %w", n.cfg.VXLAN, err)
		}
	}
	if link.Attrs().MTU != mtu {
		if err := h.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("set MTU of %s: %w", n.cfg.VXLAN, err)
		}
	}
	if link.Attrs().HardwareAddr.String() != n.vtepMAC.String() {
		if err := h.LinkSetHardwareAddr(link, n.vtepMAC); err != nil {
			return fmt.Errorf("set MAC of %s: %w", n.cfg.VXLAN, err)
		}
	}
	host := 32
	if n.cfg.PodCIDR.Addr().Is6() {
		host = 128
	}
	if err := ensureAddr(h, link, netip.PrefixFrom(n.cfg.PodCIDR.Addr(), host)); err != nil {
		return err
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", n.cfg.VXLAN, err)
	}
	return nil
}

// sameVXLAN reports whether link is a VXLAN device with want's settings.
func sameVXLAN(link netlink.Link, want *netlink.Vxlan) bool {
	v, ok := link.(*netlink.Vxlan)
	return ok && v.VxlanId == want.VxlanId && v.Port == want.Port &&
		v.VtepDevIndex == want.VtepDevIndex && v.SrcAddr.Equal(want.SrcAddr) && !v.Learning
}

// ensureAddr gives link the address p and removes its other global
// addresses of p's family (left over from another pod CIDR).
func ensureAddr(h *netlink.Handle, link netlink.Link, p netip.Prefix) error {
	family := netlink.FAMILY_V4
	if p.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := dump(func() ([]netlink.Addr, error) { return h.AddrList(link, family) })
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", link.Attrs().Name, err)
	}
	found := false
	for _, a := range addrs {
		ip, _ := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		if netip.PrefixFrom(ip.Unmap(), ones) == p {
			found = true
			continue
		}
		if ip.IsLinkLocalUnicast() {
			continue
		}
		if err := h.AddrDel(link, &a); err != nil {
			return fmt.Errorf("remove address %v from %s: %w", a.IPNet, link.Attrs().Name, err)
		}
	}
	if found {
		return nil
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if err := h.AddrAdd(link, addr); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add address %v to %s: %w", p, link.Attrs().Name, err)
	}
	return nil
}

// deleteLink removes the link called name, if there is one.
func deleteLink(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	if err := h.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// ensureSysctls turns on forwarding and makes bridged traffic go through
// the IP hooks (iptables/nftables), loading br_netfilter if needed. It runs
// in the host's network namespace.
func (n *Network) ensureSysctls() error {
	settings := []string{"net/ipv4/ip_forward"}
	if n.cfg.PodCIDR.Addr().Is6() {
		settings = []string{"net/ipv6/conf/all/forwarding"}
	}
	if _, err := os.Stat("/proc/sys/net/bridge"); errors.Is(err, os.ErrNotExist) {
		if out, err := exec.Command("modprobe", "br_netfilter").CombinedOutput(); err != nil {
			n.cfg.Log.Debugf("modprobe br_netfilter: %v: %s", err, strings.TrimSpace(string(out)))
		}
		if _, err := os.Stat("/proc/sys/net/bridge"); err != nil {
			return errors.New("br_netfilter is not loaded (no /proc/sys/net/bridge) and `modprobe br_netfilter` failed: Service traffic between pods of one node needs it")
		}
	}
	settings = append(settings, "net/bridge/bridge-nf-call-iptables")
	if n.cfg.PodCIDR.Addr().Is6() {
		settings = append(settings, "net/bridge/bridge-nf-call-ip6tables")
	}
	for _, s := range settings {
		if err := writeSysctl(s, "1"); err != nil {
			return err
		}
	}
	return nil
}

// writeSysctl sets /proc/sys/name to value unless it already has it.
func writeSysctl(name, value string) error {
	path := "/proc/sys/" + name
	cur, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(cur)) == value {
		return nil
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("set %s: %w", strings.ReplaceAll(name, "/", "."), err)
	}
	return nil
}
