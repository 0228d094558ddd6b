package proxy

import (
	"fmt"
	"slices"
	"strings"
)

// OpKind is the kind of one step of a transaction.
type OpKind int

// The steps an Applier performs, in the order a transaction lists them.
const (
	OpResetTable     OpKind = iota // add, delete and re-add the table: an empty table in the same transaction
	OpAddChain                     // declare Chain (with its hook, no rules)
	OpFlushChain                   // remove all rules of chain Name
	OpDeleteChain                  // delete the (empty, unreferenced) chain Name
	OpAddRule                      // append Rule to chain Name
	OpAddSet                       // create Set (without elements)
	OpDeleteSet                    // delete set Name
	OpAddElements                  // add Elements to Set
	OpDeleteElements               // remove Elements from Set
)

// Op is one step of a transaction on the proxy's table.
type Op struct {
	Kind     OpKind
	Name     string // chain or set name
	Chain    *Chain // OpAddChain
	Rule     Rule   // OpAddRule
	Set      *Set   // OpAddSet, OpAddElements, OpDeleteElements: the set's definition
	Elements []Element
}

// String renders the op for logs and tests.
func (o Op) String() string {
	switch o.Kind {
	case OpResetTable:
		return "reset table"
	case OpAddChain:
		if o.Chain.Hook != nil {
			return fmt.Sprintf("add chain %s (%s %s %d)", o.Chain.Name, o.Chain.Hook.Type, o.Chain.Hook.Hook, o.Chain.Hook.Priority)
		}
		return "add chain " + o.Chain.Name
	case OpFlushChain:
		return "flush chain " + o.Name
	case OpDeleteChain:
		return "delete chain " + o.Name
	case OpAddRule:
		return fmt.Sprintf("add rule %s %s", o.Name, o.Rule)
	case OpAddSet:
		return "add set " + o.Set.Name
	case OpDeleteSet:
		return "delete set " + o.Name
	case OpAddElements, OpDeleteElements:
		verb := "add"
		if o.Kind == OpDeleteElements {
			verb = "delete"
		}
		parts := make([]string, len(o.Elements))
		for i, e := range o.Elements {
			parts[i] = e.KeyString(o.Set.Key)
			if o.Set.Map && o.Kind == OpAddElements {
				parts[i] += " : " + e.Verdict.String()
			}
		}
		return fmt.Sprintf("%s element %s { %s }", verb, o.Set.Name, strings.Join(parts, ", "))
	}
	return fmt.Sprintf("op %d", int(o.Kind))
}

// fullSync returns the transaction that replaces the table with rs.
func fullSync(rs *Ruleset) []Op {
	ops := []Op{{Kind: OpResetTable}}
	for _, c := range rs.Chains {
		ops = append(ops, Op{Kind: OpAddChain, Name: c.Name, Chain: c})
	}
	for _, s := range rs.Sets {
		ops = append(ops, Op{Kind: OpAddSet, Name: s.Name, Set: s})
	}
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			ops = append(ops, Op{Kind: OpAddRule, Name: c.Name, Rule: r})
		}
	}
	for _, s := range rs.Sets {
		if len(s.Elements) > 0 {
			ops = append(ops, Op{Kind: OpAddElements, Name: s.Name, Set: s, Elements: s.Elements})
		}
	}
	return ops
}

// elemKey identifies an element within its set.
type elemKey struct {
	addr  [4]byte
	proto uint8
	port  uint16
}

func keyOf(e Element) elemKey {
	k := elemKey{proto: e.Proto, port: e.Port}
	if e.Addr.Is4() {
		k.addr = e.Addr.As4()
	}
	return k
}

// rendered indexes a ruleset by name for comparison. Statements are
// comparable values, so rules compare without rendering text.
type rendered struct {
	rs     *Ruleset
	chains map[string]*Chain
	sets   map[string]*Set
}

func render(rs *Ruleset) *rendered {
	r := &rendered{rs: rs, chains: make(map[string]*Chain, len(rs.Chains)), sets: make(map[string]*Set, len(rs.Sets))}
	for _, c := range rs.Chains {
		r.chains[c.Name] = c
	}
	for _, s := range rs.Sets {
		r.sets[s.Name] = s
	}
	return r
}

func elementIndex(s *Set) map[elemKey]Verdict {
	m := make(map[elemKey]Verdict)
	if s != nil {
		for _, e := range s.Elements {
			m[keyOf(e)] = e.Verdict
		}
	}
	return m
}

func sameRules(a, b []Rule) bool {
	return slices.EqualFunc(a, b, func(x, y Rule) bool { return slices.Equal(x, y) })
}

func sameSetDef(a, b *Set) bool {
	return a.Key == b.Key && a.Map == b.Map && a.Dynamic == b.Dynamic
}

func sameHook(a, b *Hook) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

// incremental returns the transaction that turns the table from prev into
// next, or nil when they are equal. The order matters to the kernel: objects
// are created before anything refers to them, and references are gone
// before an object is deleted. It returns ok=false when the change cannot
// be done incrementally (a set's type or a chain's hook changed).
func incremental(prev, next *rendered) (ops []Op, ok bool) {
	for _, s := range next.rs.Sets {
		if old, found := prev.sets[s.Name]; found && !sameSetDef(old, s) {
			return nil, false
		}
	}
	for _, c := range next.rs.Chains {
		if old, found := prev.chains[c.Name]; found && !sameHook(old.Hook, c.Hook) {
			return nil, false
		}
	}
	// 1. New sets and chains.
	for _, s := range next.rs.Sets {
		if _, found := prev.sets[s.Name]; !found {
			ops = append(ops, Op{Kind: OpAddSet, Name: s.Name, Set: s})
		}
	}
	for _, c := range next.rs.Chains {
		if _, found := prev.chains[c.Name]; !found {
			ops = append(ops, Op{Kind: OpAddChain, Name: c.Name, Chain: c})
		}
	}
	// 2. Elements that go or change, then 3. chains whose rules change,
	// then 4. new and changed elements.
	var adds []Op
	for _, s := range next.rs.Sets {
		if s.Dynamic {
			continue
		}
		old := prev.sets[s.Name]
		if old == s { // reused from an unchanged service
			continue
		}
		var del, add []Element
		oldElems, newElems := elementIndex(old), elementIndex(s)
		var oldList []Element
		if old != nil {
			oldList = old.Elements
		}
		for _, e := range oldList {
			if v, found := newElems[keyOf(e)]; !found || v != e.Verdict {
				del = append(del, e)
			}
		}
		for _, e := range s.Elements {
			if v, found := oldElems[keyOf(e)]; !found || v != e.Verdict {
				add = append(add, e)
			}
		}
		if len(del) > 0 {
			ops = append(ops, Op{Kind: OpDeleteElements, Name: s.Name, Set: s, Elements: del})
		}
		if len(add) > 0 {
			adds = append(adds, Op{Kind: OpAddElements, Name: s.Name, Set: s, Elements: add})
		}
	}
	for _, c := range next.rs.Chains {
		old, found := prev.chains[c.Name]
		if found && (old == c || sameRules(old.Rules, c.Rules)) {
			continue
		}
		if found && len(old.Rules) > 0 {
			ops = append(ops, Op{Kind: OpFlushChain, Name: c.Name})
		}
		for _, r := range c.Rules {
			ops = append(ops, Op{Kind: OpAddRule, Name: c.Name, Rule: r})
		}
	}
	ops = append(ops, adds...)
	// 5. Chains that go: emptied first, since they may refer to each other.
	var gone []string
	for _, c := range prev.rs.Chains {
		if _, found := next.chains[c.Name]; !found {
			gone = append(gone, c.Name)
			if len(c.Rules) > 0 {
				ops = append(ops, Op{Kind: OpFlushChain, Name: c.Name})
			}
		}
	}
	// 6. Sets that go, now that no rule refers to them; their elements may
	// refer to chains that go, so before those.
	for _, s := range prev.rs.Sets {
		if _, found := next.sets[s.Name]; !found {
			ops = append(ops, Op{Kind: OpDeleteSet, Name: s.Name})
		}
	}
	for _, name := range gone {
		ops = append(ops, Op{Kind: OpDeleteChain, Name: name})
	}
	return ops, true
}
