package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Applier performs one transaction on the proxy's table, atomically: either
// every op takes effect or none does. The netlink applier is the real one;
// tests use a recording fake.
type Applier interface {
	Apply(table string, ops []Op) error
}

// netlinkApplier applies transactions with google/nftables over netlink, in
// the network namespace netnsFd (or the current one when it is < 0).
type netlinkApplier struct {
	netnsFd int
}

// sockBuffer is the socket buffer size forced for large transactions: a
// full sync of 10,000 endpoints is one multi-megabyte netlink message, and
// the kernel queues one acknowledgement per object.
const sockBuffer = 64 << 20

func (a netlinkApplier) conn(extra ...nftables.ConnOption) (*nftables.Conn, error) {
	opts := append([]nftables.ConnOption{nftables.WithSockOptions(bigBuffers)}, extra...)
	if a.netnsFd >= 0 {
		opts = append(opts, nftables.WithNetNSFd(a.netnsFd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("open nftables netlink: %w", err)
	}
	return c, nil
}

func bigBuffers(c *netlink.Conn) error {
	if err := c.SetOption(netlink.CapAcknowledge, true); err != nil {
		return fmt.Errorf("cap netlink acks: %w", err)
	}
	raw, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("netlink raw conn: %w", err)
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		for _, opt := range []int{unix.SO_SNDBUFFORCE, unix.SO_RCVBUFFORCE} {
			if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, sockBuffer); e != nil && serr == nil {
				serr = e
			}
		}
	})
	if err == nil {
		err = serr
	}
	if errors.Is(err, syscall.EPERM) {
		return nil // without CAP_NET_ADMIN nftables fails anyway, with a clearer error
	}
	if err != nil {
		return fmt.Errorf("set netlink buffers: %w", err)
	}
	return nil
}

var hooks = map[string]*nftables.ChainHook{
	"prerouting":  nftables.ChainHookPrerouting,
	"input":       nftables.ChainHookInput,
	"forward":     nftables.ChainHookForward,
	"output":      nftables.ChainHookOutput,
	"postrouting": nftables.ChainHookPostrouting,
}

// Apply builds every op with google/nftables into one netlink batch and
// commits it.
func (a netlinkApplier) Apply(table string, ops []Op) error {
	// google/nftables asks the kernel to acknowledge every message and reads
	// the acknowledgements one recvmsg at a time, which dominates a full
	// sync of tens of thousands of objects. The library hands its batch to
	// commit instead, which asks for one acknowledgement.
	var commitErr error
	ack := []netlink.Message{{Header: netlink.Header{Type: netlink.Error}, Data: make([]byte, 20)}}
	c, err := nftables.New(nftables.WithTestDial(func(msgs []netlink.Message) ([]netlink.Message, error) {
		if len(msgs) > 0 {
			commitErr = a.commit(msgs)
		}
		return ack, nil
	}))
	if err != nil {
		return fmt.Errorf("open nftables: %w", err)
	}
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: table}
	b := &exprBuilder{conn: c, table: t}
	chain := func(name string) *nftables.Chain { return &nftables.Chain{Name: name, Table: t} }
	for _, op := range ops {
		switch op.Kind {
		case OpResetTable:
			c.AddTable(t)
			c.DelTable(t)
			c.AddTable(t)
		case OpAddChain:
			ch := chain(op.Chain.Name)
			if h := op.Chain.Hook; h != nil {
				accept := nftables.ChainPolicyAccept
				ch.Type = nftables.ChainType(h.Type)
				ch.Hooknum = hooks[h.Hook]
				ch.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(h.Priority))
				ch.Policy = &accept
			}
			c.AddChain(ch)
		case OpFlushChain:
			c.FlushChain(chain(op.Name))
		case OpDeleteChain:
			c.DelChain(chain(op.Name))
		case OpAddRule:
			var es []exprAny
			for _, s := range op.Rule {
				es = append(es, s.exprs(b)...)
			}
			c.AddRule(&nftables.Rule{Table: t, Chain: chain(op.Name), Exprs: es})
		case OpAddSet:
			err = c.AddSet(nftSet(t, op.Set), nil)
		case OpDeleteSet:
			c.DelSet(&nftables.Set{Table: t, Name: op.Name})
		case OpAddElements, OpDeleteElements:
			err = elementsInChunks(c, nftSet(t, op.Set), nftElements(op.Set, op.Elements), op.Kind == OpAddElements)
		}
		if err == nil {
			err = b.err
		}
		if err != nil {
			return fmt.Errorf("build %s: %w", op, err)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("build nftables batch: %w", err)
	}
	if commitErr != nil {
		return fmt.Errorf("commit %d nftables changes to table %s: %w", len(ops), table, commitErr)
	}
	return nil
}

// commit sends a batch (framed by batch begin and end messages) and waits
// for the kernel's verdict on the whole transaction: only the last message
// asks for an acknowledgement, and the kernel reports any failing message.
func (a netlinkApplier) commit(msgs []netlink.Message) error {
	if len(msgs) < 3 {
		return nil
	}
	cfg := &netlink.Config{}
	if a.netnsFd >= 0 {
		cfg.NetNS = a.netnsFd
	}
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, cfg)
	if err != nil {
		return fmt.Errorf("dial netlink: %w", err)
	}
	defer c.Close()
	if err := bigBuffers(c); err != nil {
		return err
	}
	for i := range msgs {
		msgs[i].Header.Flags &^= netlink.Acknowledge
	}
	last := len(msgs) - 2 // the last message before batch end
	msgs[last].Header.Flags |= netlink.Acknowledge
	sent, err := c.SendMessages(msgs)
	if err != nil {
		return fmt.Errorf("send batch: %w", err)
	}
	if err := c.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		return err
	}
	return awaitBatch(c, sent, sent[last].Header.Sequence)
}

// awaitBatch reads the kernel's answers to a sent batch until the
// acknowledgement of the message numbered ack. It reads them raw, unlike
// netlink.Conn.Receive, to name the message an error refers to: the kernel
// rejected it, and with it the whole transaction.
func awaitBatch(c *netlink.Conn, sent []netlink.Message, ack uint32) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("netlink raw conn: %w", err)
	}
	buf := make([]byte, 1<<16)
	for {
		var n int
		var rerr error
		if err := raw.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
			return rerr != unix.EAGAIN && rerr != unix.EINTR
		}); err != nil {
			return fmt.Errorf("receive nftables acknowledgement: %w", err)
		}
		if rerr != nil {
			return fmt.Errorf("receive nftables acknowledgement: %w", rerr)
		}
		for b := buf[:n]; len(b) >= unix.NLMSG_HDRLEN; {
			l := int(binary.NativeEndian.Uint32(b[0:4]))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return fmt.Errorf("malformed netlink answer (%d bytes, length %d)", len(b), l)
			}
			// An error message: errno, then the header of the message it answers.
			if binary.NativeEndian.Uint16(b[4:6]) == unix.NLMSG_ERROR && l >= unix.NLMSG_HDRLEN+4+unix.NLMSG_HDRLEN {
				errno := -int32(binary.NativeEndian.Uint32(b[16:20]))
				seq := binary.NativeEndian.Uint32(b[28:32])
				if errno != 0 {
					return fmt.Errorf("the kernel refused %s: %w", describeMessage(sent, seq), syscall.Errno(errno))
				}
				if seq == ack {
					return nil
				}
			}
			b = b[min(len(b), (l+3)&^3):]
		}
	}
}

// describeMessage names the sent message numbered seq: its position, kind
// and the object it is about.
func describeMessage(sent []netlink.Message, seq uint32) string {
	for i, m := range sent {
		if m.Header.Sequence != seq {
			continue
		}
		kinds := map[int]struct {
			what string
			attr uint16 // the attribute naming the object
		}{
			unix.NFT_MSG_NEWTABLE: {"add table", unix.NFTA_TABLE_NAME}, unix.NFT_MSG_DELTABLE: {"delete table", unix.NFTA_TABLE_NAME},
			unix.NFT_MSG_NEWCHAIN: {"add chain", unix.NFTA_CHAIN_NAME}, unix.NFT_MSG_DELCHAIN: {"delete chain", unix.NFTA_CHAIN_NAME},
			unix.NFT_MSG_NEWRULE: {"add rule to chain", unix.NFTA_RULE_CHAIN}, unix.NFT_MSG_DELRULE: {"delete rules of chain", unix.NFTA_RULE_CHAIN},
			unix.NFT_MSG_NEWSET: {"add set", unix.NFTA_SET_NAME}, unix.NFT_MSG_DELSET: {"delete set", unix.NFTA_SET_NAME},
			unix.NFT_MSG_NEWSETELEM: {"add elements to set", unix.NFTA_SET_ELEM_LIST_SET}, unix.NFT_MSG_DELSETELEM: {"delete elements of set", unix.NFTA_SET_ELEM_LIST_SET},
		}
		k, ok := kinds[int(m.Header.Type&0xff)]
		if !ok {
			return fmt.Sprintf("message %d of %d (type %#x)", i, len(sent), uint16(m.Header.Type))
		}
		name := "?"
		if len(m.Data) > 4 { // after the nfgenmsg header
			if attrs, err := netlink.UnmarshalAttributes(m.Data[4:]); err == nil {
				for _, a := range attrs {
					if a.Type == k.attr {
						name = strings.TrimRight(string(a.Data), "\x00")
					}
				}
			}
		}
		return fmt.Sprintf("message %d of %d (%s %s)", i, len(sent), k.what, name)
	}
	return fmt.Sprintf("an unknown message (sequence %d)", seq)
}

// elementsChunk bounds the elements per netlink message: the element list
// is one attribute, whose length field has 16 bits.
const elementsChunk = 128

func elementsInChunks(c *nftables.Conn, s *nftables.Set, elems []nftables.SetElement, add bool) error {
	for len(elems) > 0 {
		n := min(len(elems), elementsChunk)
		var err error
		if add {
			err = c.SetAddElements(s, elems[:n])
		} else {
			err = c.SetDeleteElements(s, elems[:n])
		}
		if err != nil {
			return err
		}
		elems = elems[n:]
	}
	return nil
}

func nftSet(t *nftables.Table, s *Set) *nftables.Set {
	ns := &nftables.Set{Table: t, Name: s.Name, KeyType: keyType(s.Key), IsMap: s.Map}
	if s.Map {
		ns.DataType = nftables.TypeVerdict
	}
	if s.Dynamic {
		ns.Dynamic, ns.HasTimeout = true, true
	}
	if s.Key == KeyIndex {
		ns.KeyByteOrder = binaryutil.NativeEndian
	}
	return ns
}

func nftElements(s *Set, elems []Element) []nftables.SetElement {
	out := make([]nftables.SetElement, len(elems))
	for i, e := range elems {
		out[i] = nftables.SetElement{Key: elementKey(s.Key, e), Timeout: e.Timeout}
		if s.Map {
			out[i].VerdictData = e.Verdict.nft()
		}
	}
	return out
}

// tableChecker is implemented by appliers that can tell whether the table
// still exists; the proxy rewrites it in full when it does not.
type tableChecker interface {
	hasTable(table string) (bool, error)
}

// hasTable reports whether table (family ip) exists.
func (a netlinkApplier) hasTable(table string) (bool, error) {
	c, err := a.conn()
	if err != nil {
		return false, err
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return false, fmt.Errorf("list nftables tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == table {
			return true, nil
		}
	}
	return false, nil
}

// affinityReader is implemented by appliers that can read the kernel's
// session affinity entries, which a full sync carries over.
type affinityReader interface {
	dynamicElements(table string) (map[string][]Element, error)
}

// dynamicElements returns the elements of the table's dynamic sets (client
// addresses) with the time they have left, by set name; nothing when the
// table does not exist.
func (a netlinkApplier) dynamicElements(table string) (map[string][]Element, error) {
	if ok, err := a.hasTable(table); err != nil || !ok {
		return nil, err
	}
	c, err := a.conn(nftables.AsLasting()) // one socket for the many set reads
	if err != nil {
		return nil, err
	}
	defer c.CloseLasting()
	sets, err := c.GetSets(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: table})
	if err != nil {
		return nil, fmt.Errorf("list sets of table ip %s: %w", table, err)
	}
	out := map[string][]Element{}
	for _, s := range sets {
		if !s.Dynamic {
			continue
		}
		elems, err := c.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("list elements of set %s: %w", s.Name, err)
		}
		for _, e := range elems {
			addr, ok := netip.AddrFromSlice(e.Key)
			// An element without a timeout would never expire.
			if ok && addr.Is4() && e.Expires >= time.Millisecond {
				out[s.Name] = append(out[s.Name], Element{Addr: addr, Timeout: e.Expires})
			}
		}
	}
	return out, nil
}

// deleteTable removes the table if it exists.
func (a netlinkApplier) deleteTable(table string) error {
	c, err := a.conn()
	if err != nil {
		return err
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return fmt.Errorf("list nftables tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == table {
			c.DelTable(t)
			if err := c.Flush(); err != nil {
				return fmt.Errorf("delete table ip %s: %w", table, err)
			}
		}
	}
	return nil
}
