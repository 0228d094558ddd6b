package kubelet

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"strings"

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

// readResolvConf reads nameserver, search (or domain) and options lines;
// an unreadable file is an empty configuration.
func readResolvConf(path string) rt.DNSConfig {
	b, err := os.ReadFile(path)
	if err != nil {
		return rt.DNSConfig{}
	}
	return parseResolvConf(b)
}

func parseResolvConf(b []byte) rt.DNSConfig {
	var d rt.DNSConfig
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			d.Servers = append(d.Servers, f[1])
		case "search", "domain":
			// The last of search and domain wins, as in the resolver.
			d.Searches = append([]string(nil), f[1:]...)
		case "options":
			d.Options = append(d.Options, f[1:]...)
		}
	}
	return d
}
