package volume

import (
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

const localhostLines = "# Kubernetes-managed hosts file.\n" +
	"127.0.0.1\tlocalhost\n" +
	"::1\tlocalhost ip6-localhost ip6-loopback\n" +
	"fe00::0\tip6-localnet\n" +
	"fe00::0\tip6-mcastprefix\n" +
	"fe00::1\tip6-allnodes\n" +
	"fe00::2\tip6-allrouters\n"

func TestEtcHosts(t *testing.T) {
	hostFile := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hostFile, []byte("127.0.0.1 localhost myhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	aliases := []corev1.HostAlias{{IP: "10.1.2.3", Hostnames: []string{"foo.local", "bar.local"}}}
	tests := []struct {
		name   string
		domain string
		spec   corev1.PodSpec
		ips    []string
		want   string
	}{
		{name: "plain", ips: []string{"10.42.0.5"}, want: localhostLines + "10.42.0.5\tweb-1\n"},
		{name: "dual stack hostname", spec: corev1.PodSpec{Hostname: "db"}, ips: []string{"10.42.0.5", "fd00::5"},
			want: localhostLines + "10.42.0.5\tdb\nfd00::5\tdb\n"},
		{name: "subdomain", spec: corev1.PodSpec{Hostname: "db-0", Subdomain: "db"}, ips: []string{"10.42.0.5"},
			want: localhostLines + "10.42.0.5\tdb-0.db.shop.svc.cluster.local\tdb-0\n"},
		{name: "custom cluster domain", domain: "corp.example", spec: corev1.PodSpec{Subdomain: "db"}, ips: []string{"10.42.0.5"},
			want: localhostLines + "10.42.0.5\tweb-1.db.shop.svc.corp.example\tweb-1\n"},
		{name: "host aliases", spec: corev1.PodSpec{HostAliases: aliases}, ips: []string{"10.42.0.5"},
			want: localhostLines + "10.42.0.5\tweb-1\n\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n"},
		{name: "host network", spec: corev1.PodSpec{HostNetwork: true, HostAliases: aliases}, ips: []string{"192.168.1.2"},
			want: "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost myhost\n\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []Option
			if tt.domain != "" {
				opts = append(opts, WithClusterDomain(tt.domain))
			}
			m := NewManager(t.TempDir(), &mapSources{}, testLog(t), opts...)
			m.hostsFile = hostFile
			pod := podWith()
			pod.Spec = tt.spec
			p, err := m.EtcHosts(pod, tt.ips)
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(m.PodDir(pod.UID), "etc-hosts"); p != want {
				t.Errorf("path = %s, want %s", p, want)
			}
			b, err := os.ReadFile(p)
			if err != nil || string(b) != tt.want {
				t.Errorf("etc-hosts = %q, %v; want %q", b, err, tt.want)
			}
		})
	}
}

func TestEtcHostsKeepsTheFileWhenUnchanged(t *testing.T) {
	m := NewManager(t.TempDir(), &mapSources{}, testLog(t))
	pod := podWith()
	p, err := m.EtcHosts(pod, []string{"10.42.0.5"})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(p)
	if _, err := m.EtcHosts(pod, []string{"10.42.0.5"}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(p)
	if !after.ModTime().Equal(before.ModTime()) {
		t.Error("unchanged hosts file was rewritten")
	}
	if _, err := m.EtcHosts(pod, []string{"10.42.0.6"}); err != nil {
		t.Fatal(err)
	}
	changed, _ := os.Stat(p)
	if !os.SameFile(before, changed) {
		t.Error("changed hosts file got a new inode; a container's bind mount would not see it")
	}
}
