package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// staleFlow names the UDP conntrack entries that send a service frontend's
// traffic to an endpoint the service no longer uses, or (Endpoint zero) all
// entries to the frontend: those made before it had endpoints were not
// NATed, and conntrack would keep them so.
type staleFlow struct {
	Frontend netip.AddrPort // a zero address: the NodePort, on any address
	Endpoint netip.Addr
}

// conntrackCleaner is implemented by appliers that can delete conntrack
// entries; the proxy calls it after a transaction removed UDP endpoints.
type conntrackCleaner interface {
	clearUDP(flows []staleFlow) error
}

// udpPorts collects the UDP service ports of the compiled services.
func udpPorts(parts partCache) map[string]udpPort {
	out := map[string]udpPort{}
	for _, cp := range parts {
		for _, u := range cp.part.udp {
			out[u.id] = u
		}
	}
	return out
}

// staleUDPFlows lists, for every UDP service port of prev, the endpoints
// that next no longer uses (all of them when the port is gone), with the
// frontends that reached them; and the frontends of UDP service ports that
// had no endpoints in prev (or did not exist) and have some in next. prev
// nil (the first sync) lists nothing: the table being replaced served the
// flows of that time.
func staleUDPFlows(prev, next map[string]udpPort) []staleFlow {
	if prev == nil {
		return nil
	}
	var out []staleFlow
	for id, cur := range next {
		if len(cur.endpoints) > 0 && len(prev[id].endpoints) == 0 {
			for _, f := range cur.frontends {
				out = append(out, staleFlow{Frontend: f})
			}
		}
	}
	for id, old := range prev {
		kept := map[netip.AddrPort]bool{}
		for _, e := range next[id].endpoints {
			kept[e] = true
		}
		for _, e := range old.endpoints {
			if kept[e] {
				continue
			}
			for _, f := range old.frontends {
				out = append(out, staleFlow{Frontend: f, Endpoint: e.Addr()})
			}
		}
	}
	return out
}

// clearUDP deletes the conntrack entries of stale UDP flows: original
// destination the frontend (any address for a NodePort), reply source the
// endpoint.
func (a netlinkApplier) clearUDP(flows []staleFlow) error {
	filters := make([]netlink.CustomConntrackFilter, 0, len(flows))
	for _, fl := range flows {
		f := &netlink.ConntrackFilter{}
		err := f.AddProtocol(protoUDP)
		if err == nil {
			err = f.AddPort(netlink.ConntrackOrigDstPort, fl.Frontend.Port())
		}
		if err == nil && fl.Frontend.Addr().IsValid() {
			err = f.AddIP(netlink.ConntrackOrigDstIP, net.IP(fl.Frontend.Addr().AsSlice()))
		}
		if err == nil && fl.Endpoint.IsValid() {
			err = f.AddIP(netlink.ConntrackReplySrcIP, net.IP(fl.Endpoint.AsSlice()))
		}
		if err != nil {
			return fmt.Errorf("conntrack filter for %s -> %s: %w", fl.Frontend, fl.Endpoint, err)
		}
		filters = append(filters, f)
	}
	var h *netlink.Handle
	var err error
	if a.netnsFd >= 0 {
		h, err = netlink.NewHandleAt(netns.NsHandle(a.netnsFd), unix.NETLINK_NETFILTER)
	} else {
		h, err = netlink.NewHandle(unix.NETLINK_NETFILTER)
	}
	if err != nil {
		return fmt.Errorf("open conntrack netlink: %w", err)
	}
	defer h.Close()
	// An interrupted dump still deleted what it saw; the rest time out.
	if _, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, filters...); err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return fmt.Errorf("delete UDP conntrack entries of %d removed endpoints: %w", len(flows), err)
	}
	return nil
}
