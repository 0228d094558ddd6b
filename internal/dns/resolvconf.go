package dns

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

// readResolvConf returns the nameservers of a resolv.conf as "ip:53",
// skipping any that would be this server itself (one of listen).
func readResolvConf(path string, listen []string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		addr, err := hostPort(fields[1])
		if err != nil || isSelf(addr, listen) {
			continue
		}
		out = append(out, addr)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
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
