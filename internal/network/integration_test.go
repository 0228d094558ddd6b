package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// sandboxID returns a random 64-hex-digit id like a Docker container's.
func sandboxID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// hostConfig is the Config of a test node whose "host" is the namespace at
// path.
func hostConfig(t *testing.T, path, name, nodeIP, podCIDR string, backend Backend) Config {
	return Config{
		NodeName:    name,
		NodeIP:      netip.MustParseAddr(nodeIP),
		PodCIDR:     netip.MustParsePrefix(podCIDR),
		ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"),
		Backend:     backend,
		StateDir:    filepath.Join(t.TempDir(), "ipam"),
		NetNS:       path,
		Log:         testLog(t, name),
	}
}

// startNetwork builds and starts a Network.
func startNetwork(t *testing.T, cfg Config) *Network {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := n.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return n
}

// setUp runs SetUp for a new sandbox namespace and returns its path, id
// and address.
func setUp(t *testing.T, n *Network, role string) (path, id string, ip netip.Addr) {
	t.Helper()
	path, id = newNS(t, role), sandboxID()
	ip, err := n.SetUp(t.Context(), id, path)
	if err != nil {
		t.Fatalf("SetUp %s: %v", role, err)
	}
	return path, id, ip
}

// iptablesIn runs iptables inside the namespace at path.
func iptablesIn(t *testing.T, path string, args ...string) (string, error) {
	t.Helper()
	var out string
	err := inNS(path, func() (err error) {
		out, err = iptables("iptables", args...)
		return err
	})
	return out, err
}

// mizzenRules counts the DOCKER-USER rules tagged mizzen in path.
func mizzenRules(t *testing.T, path string) int {
	t.Helper()
	out, err := iptablesIn(t, path, "-t", "filter", "-S", dockerUser)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(out, "--comment mizzen")
}

// readSysctl reads a sysctl in the namespace at path.
func readSysctl(t *testing.T, path, name string) string {
	t.Helper()
	var v []byte
	if err := inNS(path, func() (err error) { v, err = os.ReadFile("/proc/sys/" + name); return err }); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(v))
}

func TestOneNodePodsTalkAndSurviveRestart(t *testing.T) {
	requireRoot(t)
	host := newNS(t, "host")
	addUnderlay(t, []string{host}, []string{"192.168.77.1/24"})
	_, err := exec.LookPath("iptables")
	withDocker := err == nil
	if withDocker {
		if _, err := iptablesIn(t, host, "-t", "filter", "-N", dockerUser); err != nil {
			t.Fatalf("create a DOCKER-USER chain in the test host: %v", err)
		}
	} else {
		t.Log("no iptables binary: DOCKER-USER rules not tested")
	}
	cfg := hostConfig(t, host, "node1", "192.168.77.1", "10.42.1.0/24", BackendVXLAN)
	n := startNetwork(t, cfg)
	h := nl(t, host)

	// The bridge, the VXLAN device, the sysctls and the firewall rules.
	br, err := h.LinkByName(DefaultBridge)
	if err != nil || br.Attrs().Flags&net.FlagUp == 0 {
		t.Fatalf("bridge: %v, %+v", err, br)
	}
	requireAddr(t, h, br, "10.42.1.1/24")
	if n.Gateway().String() != "10.42.1.1" {
		t.Fatalf("Gateway = %v", n.Gateway())
	}
	vx, err := h.LinkByName(DefaultVXLAN)
	if err != nil {
		t.Fatalf("vxlan device: %v", err)
	}
	v := vx.(*netlink.Vxlan)
	if v.VxlanId != 1 || v.Port != 8472 || v.Learning || v.MTU != 1450 || v.HardwareAddr.String() != n.VTEPMAC().String() || v.Flags&net.FlagUp == 0 {
		t.Fatalf("vxlan device = VNI %d port %d learning %v MTU %d MAC %v flags %v", v.VxlanId, v.Port, v.Learning, v.MTU, v.HardwareAddr, v.Flags)
	}
	requireAddr(t, h, vx, "10.42.1.0/32")
	for _, s := range []string{"net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables"} {
		if got := readSysctl(t, host, s); got != "1" {
			t.Errorf("%s = %s, want 1", s, got)
		}
	}
	if withDocker && mizzenRules(t, host) != 2 {
		t.Fatalf("DOCKER-USER has %d mizzen rules, want 2", mizzenRules(t, host))
	}

	// Two pods on the bridge talk over TCP.
	a, idA, ipA := setUp(t, n, "a")
	b, idB, ipB := setUp(t, n, "b")
	if ipA == ipB || !cfg.PodCIDR.Contains(ipA) || !cfg.PodCIDR.Contains(ipB) || ipA == n.Gateway() {
		t.Fatalf("pod addresses %v and %v", ipA, ipB)
	}
	requirePod(t, n, host, a, idA, ipA, 1450)
	addrA := echoServer(t, a, ipA)
	requireTalk(t, b, addrA)
	conn, err := dialFrom(b, addrA)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// SetUp again, Start again and a restarted agent disturb nothing.
	vethA, _ := h.LinkByName(hostVethName(idA))
	if again, err := n.SetUp(t.Context(), idA, a); err != nil || again != ipA {
		t.Fatalf("SetUp again = %v, %v; want %v", again, err, ipA)
	}
	if v, err := h.LinkByName(hostVethName(idA)); err != nil || v.Attrs().Index != vethA.Attrs().Index {
		t.Fatalf("SetUp again re-created the veth pair: %v", err)
	}
	if err := n.Start(t.Context()); err != nil {
		t.Fatalf("Start again: %v", err)
	}
	restarted := startNetwork(t, cfg)
	for _, l := range []netlink.Link{br, vx} {
		if again, err := h.LinkByName(l.Attrs().Name); err != nil || again.Attrs().Index != l.Attrs().Index {
			t.Fatalf("restart re-created %s: %v", l.Attrs().Name, err)
		}
	}
	if restarted.IP(idA) != ipA || restarted.IP(idB) != ipB {
		t.Fatalf("after restart IP = %v, %v; want %v, %v", restarted.IP(idA), restarted.IP(idB), ipA, ipB)
	}
	if err := echo(conn, "still there"); err != nil {
		t.Fatalf("established connection broken by restart: %v", err)
	}
	if withDocker && mizzenRules(t, host) != 2 {
		t.Fatalf("after restart DOCKER-USER has %d mizzen rules, want 2", mizzenRules(t, host))
	}
	_, idC, _ := setUp(t, restarted, "c")
	if ipC := restarted.IP(idC); ipC == ipA || ipC == ipB {
		t.Fatalf("restarted agent handed out %v again", ipC)
	}

	// TearDown removes the host veth and releases the address, twice.
	for range 2 {
		if err := restarted.TearDown(t.Context(), idA); err != nil {
			t.Fatalf("TearDown: %v", err)
		}
	}
	if _, err := h.LinkByName(hostVethName(idA)); !isNotFound(err) {
		t.Fatalf("host veth still there after TearDown: %v", err)
	}
	if restarted.IP(idA).IsValid() {
		t.Fatalf("address still allocated after TearDown")
	}
	// A sandbox whose namespace is gone tears down fine.
	if err := netns.DeleteNamed(filepath.Base(b)); err != nil {
		t.Fatal(err)
	}
	if err := restarted.TearDown(t.Context(), idB); err != nil {
		t.Fatalf("TearDown after the namespace is gone: %v", err)
	}

	if err := Cleanup(cfg); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	for _, name := range []string{DefaultBridge, DefaultVXLAN, hostVethName(idC)} {
		if _, err := h.LinkByName(name); !isNotFound(err) {
			t.Errorf("%s still there after Cleanup: %v", name, err)
		}
	}
	if withDocker && mizzenRules(t, host) != 0 {
		t.Errorf("DOCKER-USER has %d mizzen rules after Cleanup", mizzenRules(t, host))
	}
	if err := Cleanup(cfg); err != nil {
		t.Fatalf("Cleanup of a clean host: %v", err)
	}
}

// requireAddr checks that link has the address want.
func requireAddr(t *testing.T, h *netlink.Handle, link netlink.Link, want string) {
	t.Helper()
	addrs, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range addrs {
		got = append(got, a.IPNet.String())
	}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("%s has addresses %v, want [%s]", link.Attrs().Name, got, want)
	}
}

// requirePod checks a sandbox's eth0, routes and host veth.
func requirePod(t *testing.T, n *Network, host, sandbox, id string, ip netip.Addr, mtu int) {
	t.Helper()
	s := nl(t, sandbox)
	eth0, err := s.LinkByName("eth0")
	if err != nil {
		t.Fatalf("eth0 in the sandbox: %v", err)
	}
	if eth0.Attrs().MTU != mtu || eth0.Attrs().Flags&net.FlagUp == 0 {
		t.Fatalf("eth0: MTU %d flags %v", eth0.Attrs().MTU, eth0.Attrs().Flags)
	}
	requireAddr(t, s, eth0, netip.PrefixFrom(ip, n.cfg.PodCIDR.Bits()).String())
	routes, err := s.RouteList(eth0, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var def bool
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.Equal(n.Gateway().AsSlice()) {
			def = true
		}
	}
	if !def {
		t.Fatalf("no default route via %v in the sandbox: %v", n.Gateway(), routes)
	}
	h := nl(t, host)
	veth, err := h.LinkByName(hostVethName(id))
	if err != nil {
		t.Fatalf("host veth: %v", err)
	}
	br, _ := h.LinkByName(DefaultBridge)
	if veth.Attrs().MasterIndex != br.Attrs().Index || veth.Attrs().Flags&net.FlagUp == 0 {
		t.Fatalf("host veth not up on the bridge: %+v", veth.Attrs())
	}
	if pi, err := h.LinkGetProtinfo(veth); err != nil || !pi.Hairpin {
		t.Fatalf("hairpin on the host veth: %+v, %v", pi, err)
	}
}

func TestConcurrentSetUpGivesDistinctAddresses(t *testing.T) {
	requireRoot(t)
	host := newNS(t, "host")
	cfg := hostConfig(t, host, "node1", "192.168.77.1", "10.42.1.0/24", BackendHostGW)
	addUnderlay(t, []string{host}, []string{"192.168.77.1/24"})
	n := startNetwork(t, cfg)
	const pods = 6
	paths := make([]string, pods)
	for i := range paths {
		paths[i] = newNS(t, "pod")
	}
	ips := make([]netip.Addr, pods)
	var wg sync.WaitGroup
	for i := range pods {
		wg.Go(func() {
			ip, err := n.SetUp(context.Background(), sandboxID(), paths[i])
			if err != nil {
				t.Errorf("SetUp: %v", err)
			}
			ips[i] = ip
		})
	}
	wg.Wait()
	seen := map[netip.Addr]bool{}
	for _, ip := range ips {
		if seen[ip] {
			t.Fatalf("address %v handed out twice: %v", ip, ips)
		}
		seen[ip] = true
	}
	addr := echoServer(t, paths[0], ips[0])
	requireTalk(t, paths[pods-1], addr)
}

func TestPodsTalkAcrossNodes(t *testing.T) {
	for _, backend := range []Backend{BackendVXLAN, BackendHostGW} {
		t.Run(string(backend), func(t *testing.T) {
			requireRoot(t)
			h1, h2 := newNS(t, "host1"), newNS(t, "host2")
			addUnderlay(t, []string{h1, h2}, []string{"192.168.77.1/24", "192.168.77.2/24"})
			cfg1 := hostConfig(t, h1, "node1", "192.168.77.1", "10.42.1.0/24", backend)
			cfg2 := hostConfig(t, h2, "node2", "192.168.77.2", "10.42.2.0/24", backend)
			n1, n2 := startNetwork(t, cfg1), startNetwork(t, cfg2)
			node1 := fakeNode("node1", "10.42.1.0/24", "192.168.77.1", n1.Annotations())
			node2 := fakeNode("node2", "10.42.2.0/24", "192.168.77.2", n2.Annotations())
			nodes := []*corev1.Node{node1, node2}
			for range 2 { // the second sync finds everything in place
				for _, n := range []*Network{n1, n2} {
					if err := n.SyncNodes(nodes); err != nil {
						t.Fatalf("SyncNodes: %v", err)
					}
				}
			}

			a, _, _ := setUp(t, n1, "a")
			b, _, ipB := setUp(t, n2, "b")
			requireTalk(t, a, echoServer(t, b, ipB))

			// A route that is not mizzen's survives every sync.
			nl1 := nl(t, h1)
			foreign := &netlink.Route{Dst: prefixNet(netip.MustParsePrefix("10.99.0.0/24")), Gw: net.ParseIP("192.168.77.2")}
			if err := nl1.RouteAdd(foreign); err != nil {
				t.Fatal(err)
			}

			if backend == BackendVXLAN {
				// node2 moves to another underlay address: its FDB entry follows.
				moved := fakeNode("node2", "10.42.2.0/24", "192.168.77.3", n2.Annotations())
				if err := n1.SyncNodes([]*corev1.Node{node1, moved}); err != nil {
					t.Fatalf("SyncNodes: %v", err)
				}
				if got := fdbDsts(t, nl1, DefaultVXLAN); len(got) != 1 || got[0] != "192.168.77.3" {
					t.Fatalf("FDB destinations after node2 moved: %v", got)
				}
			}

			// node2 goes away: its route (and VXLAN entries) go too.
			if err := n1.SyncNodes([]*corev1.Node{node1}); err != nil {
				t.Fatalf("SyncNodes: %v", err)
			}
			if got := ownRoutes(t, nl1); len(got) != 0 {
				t.Fatalf("routes left after node2 was removed: %v", got)
			}
			if backend == BackendVXLAN {
				if got := fdbDsts(t, nl1, DefaultVXLAN); len(got) != 0 {
					t.Fatalf("FDB entries left after node2 was removed: %v", got)
				}
				vx, _ := nl1.LinkByName(DefaultVXLAN)
				neighs, _ := nl1.NeighList(vx.Attrs().Index, netlink.FAMILY_V4)
				for _, e := range neighs {
					if e.State&netlink.NUD_PERMANENT != 0 {
						t.Fatalf("neighbour left after node2 was removed: %v", e)
					}
				}
			}
			if _, err := nl1.RouteGet(net.ParseIP("10.99.0.1")); err != nil {
				t.Fatalf("foreign route lookup: %v", err)
			}
			if rs, _ := nl1.RouteListFiltered(netlink.FAMILY_V4, foreign, netlink.RT_FILTER_DST); len(rs) != 1 {
				t.Fatalf("SyncNodes removed a route it does not own")
			}

			if err := n1.SyncNodes(nodes); err != nil { // back for Cleanup to remove
				t.Fatal(err)
			}
			if err := Cleanup(cfg1); err != nil {
				t.Fatalf("Cleanup: %v", err)
			}
			if got := ownRoutes(t, nl1); len(got) != 0 {
				t.Fatalf("routes left after Cleanup: %v", got)
			}
			if rs, _ := nl1.RouteListFiltered(netlink.FAMILY_V4, foreign, netlink.RT_FILTER_DST); len(rs) != 1 {
				t.Fatalf("Cleanup removed a route it does not own")
			}
		})
	}
}

// ownRoutes lists the routes carrying mizzen's protocol number.
func ownRoutes(t *testing.T, h *netlink.Handle) []netlink.Route {
	t.Helper()
	rs, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: routeProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// fdbDsts lists the underlay destinations of the VXLAN device's permanent
// FDB entries.
func fdbDsts(t *testing.T, h *netlink.Handle, dev string) []string {
	t.Helper()
	vx, err := h.LinkByName(dev)
	if err != nil {
		t.Fatalf("find %s: %v", dev, err)
	}
	fdb, err := h.NeighList(vx.Attrs().Index, unix.AF_BRIDGE)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		t.Fatalf("list FDB: %v", err)
	}
	var out []string
	for _, e := range fdb {
		if e.State&netlink.NUD_PERMANENT != 0 && e.IP != nil {
			out = append(out, e.IP.String())
		}
	}
	return out
}

func TestSwitchingToHostGWRemovesTheVXLANDevice(t *testing.T) {
	requireRoot(t)
	host := newNS(t, "host")
	addUnderlay(t, []string{host}, []string{"192.168.77.1/24"})
	cfg := hostConfig(t, host, "node1", "192.168.77.1", "10.42.1.0/24", BackendVXLAN)
	startNetwork(t, cfg)
	h := nl(t, host)
	if _, err := h.LinkByName(DefaultVXLAN); err != nil {
		t.Fatalf("vxlan device: %v", err)
	}
	cfg.Backend = BackendHostGW
	n := startNetwork(t, cfg)
	if _, err := h.LinkByName(DefaultVXLAN); !isNotFound(err) {
		t.Fatalf("vxlan device still there with host-gw: %v", err)
	}
	br, err := h.LinkByName(DefaultBridge)
	if err != nil || br.Attrs().MTU != 1500 {
		t.Fatalf("bridge with host-gw: %v, MTU %d, want 1500", err, br.Attrs().MTU)
	}
	if n.Annotations()[AnnotationBackend] != "host-gw" {
		t.Fatalf("Annotations = %v", n.Annotations())
	}
}
