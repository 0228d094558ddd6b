package network

import (
	"fmt"
	"net/netip"
	"testing"
)

// BenchmarkAllocateRelease measures one persisted allocation and release
// (two atomic, fsynced writes of the state file).
func BenchmarkAllocateRelease(b *testing.B) {
	n, err := New(Config{PodCIDR: netip.MustParsePrefix("10.42.0.0/16"), StateDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 200 { // a node with 200 pods
		if _, _, _, err := n.allocate(fmt.Sprint("pod-", i)); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprint("bench-", i)
		if _, _, _, err := n.allocate(id); err != nil {
			b.Fatal(err)
		}
		n.mu.Lock()
		err := n.ipam.release(id)
		n.mu.Unlock()
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSetUpTearDown measures the network part of starting and
// stopping a pod sandbox (root only; namespaces are created outside the
// timed loop).
func BenchmarkSetUpTearDown(b *testing.B) {
	requireRoot(b)
	host := newNS(b, "host")
	cfg := Config{NodeName: "node1", PodCIDR: netip.MustParsePrefix("10.42.1.0/24"), Backend: BackendHostGW, StateDir: b.TempDir(), NetNS: host}
	n, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := n.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	sandbox := newNS(b, "pod")
	for b.Loop() {
		id := sandboxID()
		if _, err := n.SetUp(b.Context(), id, sandbox); err != nil {
			b.Fatal(err)
		}
		if err := n.TearDown(b.Context(), id); err != nil {
			b.Fatal(err)
		}
	}
}
