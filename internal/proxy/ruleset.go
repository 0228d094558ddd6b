package proxy

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"
)

// Ruleset is the desired content of the proxy's nftables table: plain data
// that Compile produces, golden tests render and the applier turns into
// nftables objects.
type Ruleset struct {
	Table  string
	Sets   []*Set   // in a deterministic order
	Chains []*Chain // in a deterministic order, base chains first
}

// Chain is one nftables chain; Hook is nil for a regular chain.
type Chain struct {
	Name  string
	Hook  *Hook
	Rules []Rule
}

// Hook makes a chain a base chain attached to a netfilter hook.
type Hook struct {
	Type     string // "nat" or "filter"
	Hook     string // "prerouting", "input", "forward", "output", "postrouting"
	Priority int
}

// Rule is a sequence of statements, matches first and a verdict last.
type Rule []Stmt

// String renders the rule in nft syntax.
func (r Rule) String() string {
	parts := make([]string, len(r))
	for i, s := range r {
		parts[i] = s.String()
	}
	return strings.Join(parts, " ")
}

// SetKey is the key type of a set or map.
type SetKey int

// The key types the proxy uses.
const (
	KeyAddr          SetKey = iota // ipv4_addr
	KeyProtoPort                   // inet_proto . inet_service
	KeyAddrProtoPort               // ipv4_addr . inet_proto . inet_service
	KeyIndex                       // integer (a numgen result), kept in Element.Port
)

// String names the key type as nft does.
func (k SetKey) String() string {
	switch k {
	case KeyAddr:
		return "ipv4_addr"
	case KeyProtoPort:
		return "inet_proto . inet_service"
	case KeyIndex:
		return "integer"
	default:
		return "ipv4_addr . inet_proto . inet_service"
	}
}

// Set is a named set, or a verdict map when Map is true. Dynamic sets
// (session affinity) are filled by the packet path, so they carry no
// elements here and the proxy never touches their content.
type Set struct {
	Name     string
	Key      SetKey
	Map      bool // a verdict map
	Dynamic  bool // flags dynamic,timeout
	Elements []Element
}

// Element is one set or map element. Only the key fields of the set's key
// type are meaningful.
type Element struct {
	Addr    netip.Addr
	Proto   uint8
	Port    uint16
	Verdict Verdict
	// Timeout is the time left of an element of a dynamic set (a session
	// affinity entry carried over a full sync); zero for all others.
	Timeout time.Duration
}

// KeyString renders the element's key, which identifies it within its set.
func (e Element) KeyString(k SetKey) string {
	switch k {
	case KeyAddr:
		return e.Addr.String()
	case KeyProtoPort:
		return fmt.Sprintf("%s . %d", protoName(e.Proto), e.Port)
	case KeyIndex:
		return fmt.Sprintf("%04d", e.Port) // zero-padded so text order is numeric
	default:
		return fmt.Sprintf("%s . %s . %d", e.Addr, protoName(e.Proto), e.Port)
	}
}

// VerdictKind is what a verdict does.
type VerdictKind int

// The verdicts the proxy uses.
const (
	VerdictAccept VerdictKind = iota
	VerdictDrop
	VerdictReturn
	VerdictJump
	VerdictGoto
)

// Verdict ends rule evaluation or moves to another chain.
type Verdict struct {
	Kind  VerdictKind
	Chain string // for jump and goto
}

// String renders the verdict in nft syntax.
func (v Verdict) String() string {
	switch v.Kind {
	case VerdictAccept:
		return "accept"
	case VerdictDrop:
		return "drop"
	case VerdictReturn:
		return "return"
	case VerdictJump:
		return "jump " + v.Chain
	default:
		return "goto " + v.Chain
	}
}

// Goto returns a goto verdict to chain.
func Goto(chain string) Verdict { return Verdict{Kind: VerdictGoto, Chain: chain} }

// Jump returns a jump verdict to chain.
func Jump(chain string) Verdict { return Verdict{Kind: VerdictJump, Chain: chain} }

// String renders the ruleset in a form close to `nft list table`, stable
// for golden tests.
func (rs *Ruleset) String() string {
	rs = rs.sorted()
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n", rs.Table)
	for _, s := range rs.Sets {
		kind := "set"
		if s.Map {
			kind = "map"
		}
		fmt.Fprintf(&b, "\t%s %s {\n\t\ttype %s", kind, s.Name, s.Key)
		if s.Map {
			b.WriteString(" : verdict")
		}
		b.WriteString("\n")
		if s.Dynamic {
			b.WriteString("\t\tflags dynamic,timeout\n")
		}
		if len(s.Elements) > 0 {
			b.WriteString("\t\telements = {\n")
			for _, e := range s.Elements {
				fmt.Fprintf(&b, "\t\t\t%s", e.KeyString(s.Key))
				if s.Map {
					fmt.Fprintf(&b, " : %s", e.Verdict)
				}
				b.WriteString(",\n")
			}
			b.WriteString("\t\t}\n")
		}
		b.WriteString("\t}\n")
	}
	for _, c := range rs.Chains {
		fmt.Fprintf(&b, "\tchain %s {\n", c.Name)
		if c.Hook != nil {
			fmt.Fprintf(&b, "\t\ttype %s hook %s priority %d; policy accept;\n", c.Hook.Type, c.Hook.Hook, c.Hook.Priority)
		}
		for _, r := range c.Rules {
			fmt.Fprintf(&b, "\t\t%s\n", r)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// sorted returns a copy with sets, elements and regular chains in name
// order (base chains first, in their order), for stable text.
func (rs *Ruleset) sorted() *Ruleset {
	out := &Ruleset{Table: rs.Table, Chains: slices.Clone(rs.Chains)}
	for _, s := range rs.Sets {
		c := *s
		c.Elements = slices.Clone(s.Elements)
		keys := make([]string, len(c.Elements))
		for i, e := range c.Elements {
			keys[i] = e.KeyString(c.Key)
		}
		sort.Sort(byKey{c.Elements, keys})
		out.Sets = append(out.Sets, &c)
	}
	sort.Slice(out.Sets, func(i, j int) bool { return out.Sets[i].Name < out.Sets[j].Name })
	sort.SliceStable(out.Chains, func(i, j int) bool {
		a, b := out.Chains[i], out.Chains[j]
		if (a.Hook != nil) != (b.Hook != nil) {
			return a.Hook != nil
		}
		return a.Hook == nil && a.Name < b.Name
	})
	return out
}

type byKey struct {
	elems []Element
	keys  []string
}

func (b byKey) Len() int           { return len(b.elems) }
func (b byKey) Less(i, j int) bool { return b.keys[i] < b.keys[j] }
func (b byKey) Swap(i, j int) {
	b.elems[i], b.elems[j] = b.elems[j], b.elems[i]
	b.keys[i], b.keys[j] = b.keys[j], b.keys[i]
}

func protoName(p uint8) string {
	switch p {
	case protoTCP:
		return "tcp"
	case protoUDP:
		return "udp"
	case protoSCTP:
		return "sctp"
	}
	return fmt.Sprint(p)
}

const (
	protoTCP  = 6
	protoUDP  = 17
	protoSCTP = 132
)
