package volume

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// EtcHosts writes <PodDir>/etc-hosts, the pod's kubelet-managed hosts file,
// and returns its path: the localhost lines, each of podIPs with the pod's
// hostname (and its FQDN <hostname>.<subdomain>.<namespace>.svc.<cluster
// domain> when the pod has a subdomain), then spec.hostAliases. A
// host-network pod gets the host's /etc/hosts plus its hostAliases. The
// file is rewritten in place (keeping the inode a container bind-mounts)
// only when its content changes.
func (m *Manager) EtcHosts(pod *corev1.Pod, podIPs []string) (string, error) {
	if err := checkName(string(pod.UID)); err != nil {
		return "", fmt.Errorf("pod uid: %w", err)
	}
	var content []byte
	if pod.Spec.HostNetwork {
		host, err := os.ReadFile(m.hostsFile)
		if err != nil {
			return "", fmt.Errorf("read host's hosts file: %w", err)
		}
		content = append([]byte("# Kubernetes-managed hosts file (host network).\n"), host...)
		content = append(content, hostAliases(pod.Spec.HostAliases)...)
	} else {
		name, domain := m.hostnameAndDomain(pod)
		content = hostsContent(podIPs, name, domain, pod.Spec.HostAliases)
	}
	dir := m.PodDir(pod.UID)
	p := filepath.Join(dir, "etc-hosts")
	old, err := os.ReadFile(p)
	if err == nil && bytes.Equal(old, content) {
		return p, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", p, err)
	}
	return p, nil
}

// hostnameAndDomain are the pod's hostname (spec.hostname or its name, cut
// to 63 characters) and its domain, empty without spec.subdomain.
func (m *Manager) hostnameAndDomain(pod *corev1.Pod) (string, string) {
	name := pod.Name
	if pod.Spec.Hostname != "" {
		name = pod.Spec.Hostname
	}
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-.")
	}
	if pod.Spec.Subdomain == "" {
		return name, ""
	}
	return name, fmt.Sprintf("%s.%s.svc.%s", pod.Spec.Subdomain, pod.Namespace, m.domain)
}

func hostsContent(ips []string, name, domain string, aliases []corev1.HostAlias) []byte {
	var b bytes.Buffer
	b.WriteString("# Kubernetes-managed hosts file.\n")
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\n")
	b.WriteString("fe00::0\tip6-mcastprefix\n")
	b.WriteString("fe00::1\tip6-allnodes\n")
	b.WriteString("fe00::2\tip6-allrouters\n")
	for _, ip := range ips {
		if domain != "" {
			fmt.Fprintf(&b, "%s\t%s.%s\t%s\n", ip, name, domain, name)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", ip, name)
		}
	}
	b.Write(hostAliases(aliases))
	return b.Bytes()
}

func hostAliases(aliases []corev1.HostAlias) []byte {
	if len(aliases) == 0 {
		return nil
	}
	var b bytes.Buffer
	b.WriteString("\n# Entries added by HostAliases.\n")
	for _, a := range aliases {
		fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
	}
	return b.Bytes()
}
