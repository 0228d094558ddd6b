package nodeipam

import (
	"encoding/binary"
	"net/netip"
)

// cidrSet tells which node ranges of the cluster CIDR are taken: exact
// node-sized ranges by value, and any other range nodes carry (larger,
// smaller or misaligned) by overlap.
type cidrSet struct {
	exact map[netip.Prefix]bool
	other []netip.Prefix
}

func newCIDRSet() *cidrSet { return &cidrSet{exact: map[netip.Prefix]bool{}} }

// mark records cidr (as written on a node) as taken; ranges that do not
// parse are ignored, as they cannot collide with an allocation.
func (s *cidrSet) mark(cidr string, size int) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return
	}
	if p = p.Masked(); p.Bits() == size {
		s.exact[p] = true
		return
	}
	s.other = append(s.other, p)
}

func (s *cidrSet) taken(p netip.Prefix) bool {
	if s.exact[p] {
		return true
	}
	for _, o := range s.other {
		if o.Overlaps(p) {
			return true
		}
	}
	return false
}

// lowestFree returns the first node range of cluster (each a /size) that s
// does not hold, and false when every one is taken.
func (s *cidrSet) lowestFree(cluster netip.Prefix, size int) (netip.Prefix, bool) {
	hostBits := cluster.Addr().BitLen() - size
	count := subnetCount(cluster, size)
	for i := uint64(0); count == 0 || i < count; i++ {
		p := netip.PrefixFrom(offset(cluster.Masked().Addr(), i, hostBits), size)
		if !s.taken(p) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// subnetCount is how many /size ranges cluster holds, 0 meaning more than
// a uint64 counts (never exhausted in practice).
func subnetCount(cluster netip.Prefix, size int) uint64 {
	n := size - cluster.Bits()
	if n >= 64 {
		return 0
	}
	return 1 << n
}

// offset returns base + i<<hostBits.
func offset(base netip.Addr, i uint64, hostBits int) netip.Addr {
	b := base.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	var addHi, addLo uint64
	switch {
	case hostBits >= 128:
		return base
	case hostBits >= 64:
		addHi = i << (hostBits - 64)
	default:
		addLo = i << hostBits
		if hostBits > 0 {
			addHi = i >> (64 - hostBits)
		}
	}
	sum := lo + addLo
	if sum < lo {
		hi++
	}
	hi += addHi
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], sum)
	a := netip.AddrFrom16(b)
	if base.Is4() {
		a = a.Unmap()
	}
	return a
}
