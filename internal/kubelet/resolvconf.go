package kubelet

import (
	"net/netip"

	"github.com/mizzen-dev/mizzen/internal/resolvconf"
	rt "github.com/mizzen-dev/mizzen/internal/runtime"
)

// systemdResolvConf lists systemd-resolved's upstream servers, for hosts
// whose /etc/resolv.conf names only its loopback stub (k3s does the same).
const systemdResolvConf = "/run/systemd/resolve/resolv.conf"

// HostResolvConf returns the host's resolver configuration that pods with
// dnsPolicy Default (and ClusterFirst's search domains) start from:
// /etc/resolv.conf, or systemd-resolved's upstream file when that one
// names only loopback servers, which pods cannot reach.
func HostResolvConf() rt.DNSConfig {
	d := readResolvConf("/etc/resolv.conf")
	if onlyLoopback(d.Servers) {
		if alt := readResolvConf(systemdResolvConf); len(alt.Servers) > 0 {
			return alt
		}
	}
	return d
}

func onlyLoopback(servers []string) bool {
	for _, s := range servers {
		if a, err := netip.ParseAddr(s); err != nil || !a.IsLoopback() {
			return false
		}
	}
	return len(servers) > 0
}

// readResolvConf reads a resolv.conf; an unreadable file is an empty
// configuration.
func readResolvConf(path string) rt.DNSConfig {
	c, err := resolvconf.Read(path)
	if err != nil {
		return rt.DNSConfig{}
	}
	return rt.DNSConfig{Servers: c.Nameservers, Searches: c.Searches, Options: c.Options}
}
