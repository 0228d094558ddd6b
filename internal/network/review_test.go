package network

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// A sandbox path that turns out to be the host's own namespace (a reused
// PID, a host-network sandbox) must not have its eth0 deleted or a veth
// end moved into it.
func TestSetUpRefusesTheHostNamespace(t *testing.T) {
	requireRoot(t)
	host := newNS(t, "host")
	addUnderlay(t, []string{host}, []string{"192.168.77.1/24"})
	h := nl(t, host)
	attrs := netlink.NewLinkAttrs()
	attrs.Name = podIfName
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "eth0p"}); err != nil {
		t.Fatalf("add the host's eth0: %v", err)
	}
	eth0, err := h.LinkByName(podIfName)
	if err != nil {
		t.Fatal(err)
	}
	n := startNetwork(t, hostConfig(t, host, "node1", "192.168.77.1", "10.42.1.0/24", BackendHostGW))
	id := sandboxID()
	_, err = n.SetUp(t.Context(), id, host)
	if err == nil || !strings.Contains(err.Error(), "host's network namespace") {
		t.Errorf("SetUp into the host namespace: err = %v, want a refusal", err)
	}
	if again, err := h.LinkByName(podIfName); err != nil || again.Attrs().Index != eth0.Attrs().Index {
		t.Fatalf("the host's eth0 was deleted or replaced: %v", err)
	}
	if _, err := h.LinkByName(hostVethName(id)); !isNotFound(err) {
		t.Fatalf("a host veth was left behind: %v", err)
	}
	if n.IP(id).IsValid() {
		t.Fatalf("the refused sandbox kept an address")
	}
}

// A pod CIDR without a single assignable address is rejected by New,
// instead of hanging the first SetUp (and every call after it).
func TestNewRejectsPodCIDRsWithoutAddresses(t *testing.T) {
	for _, cidr := range []string{"10.42.1.7/32", "10.42.1.6/31", "fd00::1/128", "fd00::/127"} {
		t.Run(cidr, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				n, err := New(Config{PodCIDR: netip.MustParsePrefix(cidr), StateDir: filepath.Join(t.TempDir(), "ipam")})
				if err == nil {
					_, _, _, err = n.allocate("a")
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Fatalf("an address was handed out from %s", cidr)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("allocating from %s hangs", cidr)
			}
		})
	}
}

// A restarted agent whose cluster CIDR changed (a new cluster) leaves no
// accept rules for the old one in DOCKER-USER.
func TestStartReplacesDockerUserRulesOfAnOldClusterCIDR(t *testing.T) {
	requireRoot(t)
	host := newNS(t, "host")
	addUnderlay(t, []string{host}, []string{"192.168.77.1/24"})
	if _, err := iptablesIn(t, host, "-t", "filter", "-N", dockerUser); err != nil {
		t.Skipf("SKIPPED: no iptables to test DOCKER-USER with: %v", err)
	}
	cfg := hostConfig(t, host, "node1", "192.168.77.1", "10.42.1.0/24", BackendHostGW)
	startNetwork(t, cfg)
	cfg.ClusterCIDR, cfg.PodCIDR = netip.MustParsePrefix("10.52.0.0/16"), netip.MustParsePrefix("10.52.1.0/24")
	startNetwork(t, cfg)
	out, err := iptablesIn(t, host, "-t", "filter", "-S", dockerUser)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "10.42.0.0/16") || strings.Count(out, "10.52.0.0/16") != 2 {
		t.Fatalf("DOCKER-USER after the cluster CIDR changed:\n%s", out)
	}
}
