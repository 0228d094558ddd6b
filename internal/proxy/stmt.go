package proxy

import (
	"fmt"
	"net/netip"
	"time"
)

// Stmt is one statement of a rule: a match, an action or a verdict. Each
// renders itself in nft syntax and knows its nftables expressions.
type Stmt interface {
	String() string
	exprs(b *exprBuilder) []exprAny
}

// MatchAddr matches the IPv4 source or destination address against a prefix
// (a single address when the prefix is /32).
type MatchAddr struct {
	Dst    bool
	Not    bool
	Prefix netip.Prefix
}

// String renders the statement in nft syntax.
func (m MatchAddr) String() string {
	field := "saddr"
	if m.Dst {
		field = "daddr"
	}
	op := ""
	if m.Not {
		op = "!= "
	}
	v := m.Prefix.String()
	if m.Prefix.IsSingleIP() {
		v = m.Prefix.Addr().String()
	}
	return fmt.Sprintf("ip %s %s%s", field, op, v)
}

// MatchProto matches the layer 4 protocol.
type MatchProto struct{ Proto uint8 }

// String renders the statement in nft syntax.
func (m MatchProto) String() string { return "meta l4proto " + protoName(m.Proto) }

// MatchPort matches the transport destination port.
type MatchPort struct{ Port uint16 }

// String renders the statement in nft syntax.
func (m MatchPort) String() string { return fmt.Sprintf("th dport %d", m.Port) }

// MatchFibLocal matches packets whose destination (or source) address is
// local to this host.
type MatchFibLocal struct{ Src bool }

// String renders the statement in nft syntax.
func (m MatchFibLocal) String() string {
	if m.Src {
		return "fib saddr type local"
	}
	return "fib daddr type local"
}

// MatchCtNew matches the first packet of a connection.
type MatchCtNew struct{}

// String renders the statement in nft syntax.
func (MatchCtNew) String() string { return "ct state new" }

// MatchMark matches packets with any bit of Mark set.
type MatchMark struct{ Mark uint32 }

// String renders the statement in nft syntax.
func (m MatchMark) String() string { return fmt.Sprintf("meta mark & 0x%08x != 0", m.Mark) }

// SetMark sets (Or) or toggles (Xor) the bits of Mark in the packet mark.
type SetMark struct {
	Mark uint32
	Xor  bool
}

// String renders the statement in nft syntax.
func (m SetMark) String() string {
	op := "|"
	if m.Xor {
		op = "^"
	}
	return fmt.Sprintf("meta mark set meta mark %s 0x%08x", op, m.Mark)
}

// Masquerade source-NATs to the outgoing interface's address.
type Masquerade struct{}

// String renders the statement in nft syntax.
func (Masquerade) String() string { return "masquerade fully-random" }

// DNAT rewrites the destination to an address and port.
type DNAT struct{ To netip.AddrPort }

// String renders the statement in nft syntax.
func (d DNAT) String() string { return "dnat to " + d.To.String() }

// Reject refuses the packet: with a TCP reset when TCP, else ICMP port
// unreachable.
type Reject struct{ TCP bool }

// String renders the statement in nft syntax.
func (r Reject) String() string {
	if r.TCP {
		return "reject with tcp reset"
	}
	return "reject"
}

// VmapLookup looks the packet's key up in a named verdict map.
type VmapLookup struct {
	Key SetKey
	Map string
}

// String renders the statement in nft syntax.
func (v VmapLookup) String() string {
	k := "ip daddr . meta l4proto . th dport"
	if v.Key == KeyProtoPort {
		k = "meta l4proto . th dport"
	}
	return fmt.Sprintf("%s vmap @%s", k, v.Map)
}

// NumgenVmap draws a random number below N and looks it up in Map, a
// named verdict map from index to endpoint chain. A named map, not an
// anonymous one: the kernel binds anonymous sets in time linear in the
// transaction, which makes a large full sync quadratic.
type NumgenVmap struct {
	N   int
	Map string
}

// String renders the statement in nft syntax.
func (n NumgenVmap) String() string {
	return fmt.Sprintf("numgen random mod %d vmap @%s", n.N, n.Map)
}

// UpdateSaddr adds or refreshes the packet's source address in a dynamic set
// with a timeout.
type UpdateSaddr struct {
	Set     string
	Timeout time.Duration
}

// String renders the statement in nft syntax.
func (u UpdateSaddr) String() string {
	return fmt.Sprintf("update @%s { ip saddr timeout %ds }", u.Set, int64(u.Timeout/time.Second))
}

// MatchSaddrInSet matches packets whose source address is in a set.
type MatchSaddrInSet struct{ Set string }

// String renders the statement in nft syntax.
func (m MatchSaddrInSet) String() string { return "ip saddr @" + m.Set }
