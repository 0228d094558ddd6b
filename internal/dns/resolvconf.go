package dns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/mizzen-dev/mizzen/internal/resolvconf"
)

// readResolvConf returns the nameservers of a resolv.conf as "ip:53",
// skipping any that would be this server itself (one of listen).
func readResolvConf(path string, listen []string) ([]string, error) {
	c, err := resolvconf.Read(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ns := range c.Nameservers {
		addr, err := hostPort(ns)
		if err != nil || isSelf(addr, listen) {
			continue
		}
		out = append(out, addr)
	}
	return out, nil
}

// hostPort turns "ip" or "ip:port" (IPv6 with or without brackets and zone)
// into a dialable "ip:port", port 53 by default.
func hostPort(s string) (string, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.String(), nil
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return "", errors.New("not an IP address or ip:port")
	}
	return netip.AddrPortFrom(a, 53).String(), nil
}

// isSelf reports whether the upstream addr is one of the listen addresses,
// counting a wildcard listener as every loopback address.
func isSelf(addr string, listen []string) bool {
	up, err := netip.ParseAddrPort(addr)
	if err != nil {
		return false
	}
	for _, l := range listen {
		host, port, err := net.SplitHostPort(l)
		if err != nil || port != fmt.Sprint(up.Port()) {
			continue
		}
		la, err := netip.ParseAddr(host)
		if err != nil {
			continue
		}
		if la.Unmap() == up.Addr().Unmap() || (la.IsUnspecified() && up.Addr().IsLoopback()) {
			return true
		}
	}
	return false
}
