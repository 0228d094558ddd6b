package network

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// newTestNetwork returns a Network over a fresh state dir; nothing on the
// host is touched until Start or SetUp.
func newTestNetwork(t *testing.T, dir, cidr string) *Network {
	t.Helper()
	n, err := New(Config{
		NodeName:    "node1",
		PodCIDR:     netip.MustParsePrefix(cidr),
		ClusterCIDR: netip.MustParsePrefix("10.0.0.0/8"),
		StateDir:    dir,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return n
}

// mustAllocate allocates an address for each id and returns them in order.
func mustAllocate(t *testing.T, n *Network, ids ...string) []string {
	t.Helper()
	var out []string
	for _, id := range ids {
		ip, _, _, err := n.allocate(id)
		if err != nil {
			t.Fatalf("allocate %s: %v", id, err)
		}
		out = append(out, ip.String())
	}
	return out
}

func release(t *testing.T, n *Network, id string) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.ipam.release(id); err != nil {
		t.Fatalf("release %s: %v", id, err)
	}
}

func TestAllocateSkipsNetworkGatewayAndBroadcastUntilExhausted(t *testing.T) {
	n := newTestNetwork(t, t.TempDir(), "10.0.0.0/29")
	got := mustAllocate(t, n, "a", "b", "c", "d", "e")
	want := []string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("allocated %v, want %v", got, want)
	}
	_, _, _, err := n.allocate("f")
	if err == nil || !strings.Contains(err.Error(), "exhausted") {
		t.Fatalf("allocate on a full CIDR: err = %v, want an exhaustion error", err)
	}
	if n.IP("f").IsValid() {
		t.Fatalf("failed allocation left an address for f")
	}
}

func TestAllocateIsIdempotentPerID(t *testing.T) {
	n := newTestNetwork(t, t.TempDir(), "10.0.0.0/24")
	first := mustAllocate(t, n, "a", "b")
	ip, isNew, _, err := n.allocate("a")
	if err != nil || isNew || ip.String() != first[0] {
		t.Fatalf("second allocate(a) = %v, new=%v, %v; want %s, not new", ip, isNew, err, first[0])
	}
	if got := n.IP("b").String(); got != first[1] {
		t.Fatalf("IP(b) = %s, want %s", got, first[1])
	}
	if n.IP("unknown").IsValid() {
		t.Fatalf("IP of an unknown id is not zero")
	}
}

func TestReleasedAddressesAreReusedRoundRobin(t *testing.T) {
	n := newTestNetwork(t, t.TempDir(), "10.0.0.0/29")
	mustAllocate(t, n, "a", "b", "c") // .2 .3 .4
	release(t, n, "a")
	release(t, n, "a") // releasing twice is fine
	got := mustAllocate(t, n, "d", "e", "f")
	want := []string{"10.0.0.5", "10.0.0.6", "10.0.0.2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after releasing .2 allocated %v, want %v", got, want)
	}
}

func TestAllocationsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	n := newTestNetwork(t, dir, "10.0.0.0/29")
	mustAllocate(t, n, "a", "b", "c") // .2 .3 .4
	release(t, n, "b")

	restarted := newTestNetwork(t, dir, "10.0.0.0/29")
	for id, want := range map[string]string{"a": "10.0.0.2", "c": "10.0.0.4"} {
		if got := restarted.IP(id).String(); got != want {
			t.Errorf("after restart IP(%s) = %s, want %s", id, got, want)
		}
	}
	if restarted.IP("b").IsValid() {
		t.Errorf("released b still has an address after restart")
	}
	// Round-robin resumes after the last address handed out (.4), so the
	// released .3 comes last.
	got := mustAllocate(t, restarted, "d", "e", "f")
	want := []string{"10.0.0.5", "10.0.0.6", "10.0.0.3"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after restart allocated %v, want %v", got, want)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("state dir holds %d files, want only %s (no temporary files left)", len(entries), stateFile)
	}
}

func TestNewPodCIDRStartsFresh(t *testing.T) {
	dir := t.TempDir()
	mustAllocate(t, newTestNetwork(t, dir, "10.0.0.0/24"), "a", "b")
	n := newTestNetwork(t, dir, "10.0.1.0/24")
	if n.IP("a").IsValid() {
		t.Fatalf("allocation of the old pod CIDR kept")
	}
	if got := mustAllocate(t, n, "c"); got[0] != "10.0.1.2" {
		t.Fatalf("first address of the new pod CIDR = %s, want 10.0.1.2", got[0])
	}
}

func TestNewRejectsBadConfigAndState(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"corrupt state", Config{PodCIDR: netip.MustParsePrefix("10.0.0.0/24"), StateDir: dir}, "parse IPAM state"},
		{"no pod CIDR", Config{StateDir: t.TempDir()}, "no pod CIDR"},
		{"no state dir", Config{PodCIDR: netip.MustParsePrefix("10.0.0.0/24")}, "no state directory"},
		{"unknown backend", Config{PodCIDR: netip.MustParsePrefix("10.0.0.0/24"), StateDir: t.TempDir(), Backend: "udp"}, "unknown network backend"},
		{"outside cluster CIDR", Config{PodCIDR: netip.MustParsePrefix("10.0.0.0/24"), ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"), StateDir: t.TempDir()}, "outside the cluster CIDR"},
		{"too small", Config{PodCIDR: netip.MustParsePrefix("10.0.0.0/31"), StateDir: t.TempDir()}, "too small"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestGCReleasesOnlyGoneSandboxesAllocatedBeforeTheCutoff(t *testing.T) {
	dir := t.TempDir()
	n := newTestNetwork(t, dir, "10.0.0.0/24")
	mustAllocate(t, n, "gone", "live")
	cutoff := time.Now()
	mustAllocate(t, n, "settingup") // allocated after the cutoff: not judged

	if err := n.GC(func(id string) bool { return id == "live" }, cutoff); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if n.IP("gone").IsValid() {
		t.Errorf("GC kept the address of a gone sandbox")
	}
	if !n.IP("live").IsValid() || !n.IP("settingup").IsValid() {
		t.Errorf("GC released a live sandbox or one allocated after the cutoff")
	}
	if newTestNetwork(t, dir, "10.0.0.0/24").IP("gone").IsValid() {
		t.Errorf("GC's release was not persisted")
	}
}

func TestConcurrentAllocationsAreDistinct(t *testing.T) {
	n := newTestNetwork(t, t.TempDir(), "10.0.0.0/24")
	const workers = 40
	ips := make([]netip.Addr, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			id := fmt.Sprintf("sandbox-%d", i)
			ip, _, _, err := n.allocate(id)
			if err != nil {
				t.Errorf("allocate %s: %v", id, err)
			}
			ips[i] = ip
			_ = n.IP(id)
			if i%10 == 0 {
				_ = n.GC(func(string) bool { return true }, time.Now())
			}
		})
	}
	wg.Wait()
	seen := map[netip.Addr]bool{}
	for _, ip := range ips {
		if seen[ip] {
			t.Fatalf("address %v handed out twice", ip)
		}
		seen[ip] = true
	}
}

func TestLastAddr(t *testing.T) {
	for in, want := range map[string]string{
		"10.42.1.0/24":  "10.42.1.255",
		"10.42.0.0/16":  "10.42.255.255",
		"10.0.0.8/29":   "10.0.0.15",
		"10.42.1.0/23":  "10.42.1.255",
		"fd00::/120":    "fd00::ff",
		"192.168.0.0/0": "255.255.255.255",
	} {
		if got := lastAddr(netip.MustParsePrefix(in)).String(); got != want {
			t.Errorf("lastAddr(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestIsHostVethName(t *testing.T) {
	for name, want := range map[string]bool{
		hostVethName("0123456789abcdef0123"): true,
		"mz0123456789ab":                     true,
		"mzlab12h3":                          false,
		"mz0123456789":                       false,
		"mz0123456789aB":                     false,
		"eth0":                               false,
	} {
		if got := isHostVethName(name); got != want {
			t.Errorf("isHostVethName(%q) = %v, want %v", name, got, want)
		}
	}
}
