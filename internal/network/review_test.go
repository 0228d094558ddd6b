package network

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
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

// A Node whose podCIDR is outside the cluster CIDR (hand-made, or from
// another cluster) must not replace the host's own routes, here the
// underlay's connected route.
func TestSyncNodesLeavesTheHostsRoutesAlone(t *testing.T) {
	requireRoot(t)
	h1, h2 := newNS(t, "host1"), newNS(t, "host2")
	addUnderlay(t, []string{h1, h2}, []string{"192.168.77.1/24", "192.168.77.2/24"})
	n1 := startNetwork(t, hostConfig(t, h1, "node1", "192.168.77.1", "10.42.1.0/24", BackendHostGW))
	bad := fakeNode("node2", "192.168.77.0/24", "192.168.77.2", nil)
	if err := n1.SyncNodes([]*corev1.Node{bad}); err != nil {
		t.Logf("SyncNodes: %v", err)
	}
	h := nl(t, h1)
	ul0, err := h.LinkByName("ul0")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: prefixNet(netip.MustParsePrefix("192.168.77.0/24"))}, netlink.RT_FILTER_DST)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].LinkIndex != ul0.Attrs().Index || rs[0].Protocol == routeProtocol {
		t.Fatalf("routes to the underlay after SyncNodes: %+v", rs)
	}
}

// VXLAN over an IPv6 underlay costs 70 bytes, not 50 (as flannel counts):
// a larger pod MTU would black-hole full-size packets.
func TestVXLANMTUOverAnIPv6Underlay(t *testing.T) {
	requireRoot(t)
	host := newNS(t, "host")
	addUnderlay(t, []string{host}, []string{"fd77::1/64"})
	cfg := hostConfig(t, host, "node1", "fd77::1", "10.42.1.0/24", BackendVXLAN)
	startNetwork(t, cfg)
	vx, err := nl(t, host).LinkByName(DefaultVXLAN)
	if err != nil {
		t.Fatal(err)
	}
	if vx.Attrs().MTU != 1430 {
		t.Fatalf("vxlan MTU over IPv6 = %d, want 1430", vx.Attrs().MTU)
	}
}

// Start re-creating a bridge that went away (deleted by hand, or by a
// cleanup while pods ran) puts the running pods' veths back on it.
func TestStartReattachesPodsToARecreatedBridge(t *testing.T) {
	requireRoot(t)
	host := newNS(t, "host")
	addUnderlay(t, []string{host}, []string{"192.168.77.1/24"})
	cfg := hostConfig(t, host, "node1", "192.168.77.1", "10.42.1.0/24", BackendHostGW)
	n := startNetwork(t, cfg)
	a, _, ipA := setUp(t, n, "a")
	h := nl(t, host)
	if err := deleteLink(h, DefaultBridge); err != nil {
		t.Fatal(err)
	}
	restarted := startNetwork(t, cfg)
	b, _, _ := setUp(t, restarted, "b")
	requireTalk(t, b, echoServer(t, a, ipA))
}

// Temporary state files left by a crash between write and rename do not
// pile up: New removes them.
func TestNewRemovesLeftoverTemporaryStateFiles(t *testing.T) {
	dir := t.TempDir()
	n := newTestNetwork(t, dir, "10.42.1.0/24")
	mustAllocate(t, n, "a")
	leftover := filepath.Join(dir, stateFile+".tmp123")
	if err := os.WriteFile(leftover, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	again := newTestNetwork(t, dir, "10.42.1.0/24")
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover temporary file still there: %v", err)
	}
	if !again.IP("a").IsValid() {
		t.Fatal("allocation lost")
	}
}
