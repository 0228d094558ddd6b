package nodeipam

import (
	"net/netip"
	"testing"
)

func TestOffsetCarriesAcrossBytes(t *testing.T) {
	for _, tc := range []struct {
		base string
		i    uint64
		bits int
		want string
	}{
		{"10.0.0.0", 300, 8, "10.1.44.0"},
		{"10.42.0.0", 255, 8, "10.42.255.0"},
		{"fd00::", 3, 64, "fd00:0:0:3::"},
		{"fd00::", 1, 60, "fd00::1000:0:0:0"},
		{"fd00::ffff:ffff:ffff:ff00", 1, 8, "fd00:0:0:1::"},
	} {
		if got := offset(netip.MustParseAddr(tc.base), tc.i, tc.bits); got.String() != tc.want {
			t.Errorf("%s + %d<<%d = %s, want %s", tc.base, tc.i, tc.bits, got, tc.want)
		}
	}
}

func TestLowestFreeSkipsTakenAndReportsFull(t *testing.T) {
	s := newCIDRSet()
	cluster := netip.MustParsePrefix("10.42.0.0/23")
	s.mark("10.42.0.0/24", 24)
	if p, ok := s.lowestFree(cluster, 24); !ok || p.String() != "10.42.1.0/24" {
		t.Fatalf("got %s %v", p, ok)
	}
	s.mark("10.42.1.7/24", 24) // unmasked on the node: still that range
	if p, ok := s.lowestFree(cluster, 24); ok {
		t.Fatalf("full range gave %s", p)
	}
}
