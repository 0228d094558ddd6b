package proxy

import (
	"encoding/binary"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

type exprAny = expr.Any

// exprBuilder turns statements into nftables expressions; it adds the
// anonymous sets some statements need to the transaction being built.
type exprBuilder struct {
	conn  *nftables.Conn
	table *nftables.Table
	err   error
}

const (
	reg1     = unix.NFT_REG_1
	reg32a   = unix.NFT_REG32_00
	reg32b   = unix.NFT_REG32_01
	reg32c   = unix.NFT_REG32_02
	rtnLocal = unix.RTN_LOCAL
)

func ipOffset(dst bool) uint32 {
	if dst {
		return 16
	}
	return 12
}

func (m MatchAddr) exprs(*exprBuilder) []exprAny {
	op := expr.CmpOpEq
	if m.Not {
		op = expr.CmpOpNeq
	}
	a := m.Prefix.Masked().Addr().As4()
	es := []exprAny{&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: ipOffset(m.Dst), Len: 4}}
	if !m.Prefix.IsSingleIP() {
		mask := binary.BigEndian.AppendUint32(nil, ^uint32(0)<<(32-m.Prefix.Bits()))
		es = append(es, &expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}})
	}
	return append(es, &expr.Cmp{Op: op, Register: reg1, Data: a[:]})
}

func (m MatchProto) exprs(*exprBuilder) []exprAny {
	return []exprAny{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{m.Proto}},
	}
}

func (m MatchPort) exprs(*exprBuilder) []exprAny {
	return []exprAny{
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: binaryutil.BigEndian.PutUint16(m.Port)},
	}
}

func (m MatchFibLocal) exprs(*exprBuilder) []exprAny {
	return []exprAny{
		&expr.Fib{Register: reg1, ResultADDRTYPE: true, FlagDADDR: !m.Src, FlagSADDR: m.Src},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(rtnLocal)},
	}
}

func (MatchCtNew) exprs(*exprBuilder) []exprAny {
	return []exprAny{
		&expr.Ct{Register: reg1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitNEW), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

func (m MatchMark) exprs(*exprBuilder) []exprAny {
	return []exprAny{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(m.Mark), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

func (m SetMark) exprs(*exprBuilder) []exprAny {
	mask, xor := ^m.Mark, m.Mark // (mark & ^bit) ^ bit sets the bit
	if m.Xor {
		mask = ^uint32(0)
	}
	return []exprAny{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(mask), Xor: binaryutil.NativeEndian.PutUint32(xor)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg1},
	}
}

func (Masquerade) exprs(*exprBuilder) []exprAny {
	return []exprAny{&expr.Masq{FullyRandom: true}}
}

func (d DNAT) exprs(*exprBuilder) []exprAny {
	a := d.To.Addr().As4()
	return []exprAny{
		&expr.Immediate{Register: reg1, Data: a[:]},
		&expr.Immediate{Register: unix.NFT_REG_2, Data: binaryutil.BigEndian.PutUint16(d.To.Port())},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg1, RegProtoMin: unix.NFT_REG_2, Specified: true},
	}
}

func (r Reject) exprs(*exprBuilder) []exprAny {
	if r.TCP {
		return []exprAny{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}}
	}
	return []exprAny{&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 3}} // ICMP port unreachable
}

// loadKey loads the packet's concatenated key into consecutive 32-bit
// registers, as nft does for concatenations, and returns the first one.
func loadKey(k SetKey) (uint32, []exprAny) {
	first := uint32(reg32a)
	var es []exprAny
	if k == KeyAddrProtoPort {
		es = append(es, &expr.Payload{DestRegister: reg32a, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4})
	}
	protoReg, portReg := uint32(reg32b), uint32(reg32c)
	if k == KeyProtoPort {
		protoReg, portReg = reg32a, reg32b
	}
	es = append(es,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: protoReg},
		&expr.Payload{DestRegister: portReg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
	return first, es
}

func (v VmapLookup) exprs(*exprBuilder) []exprAny {
	reg, es := loadKey(v.Key)
	return append(es, &expr.Lookup{SourceRegister: reg, IsDestRegSet: true, DestRegister: 0, SetName: v.Map})
}

func (n NumgenVmap) exprs(*exprBuilder) []exprAny {
	return []exprAny{
		&expr.Numgen{Register: reg1, Modulus: uint32(n.N), Type: unix.NFT_NG_RANDOM},
		&expr.Lookup{SourceRegister: reg1, IsDestRegSet: true, DestRegister: 0, SetName: n.Map},
	}
}

func (u UpdateSaddr) exprs(*exprBuilder) []exprAny {
	return []exprAny{
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Dynset{SrcRegKey: reg1, SetName: u.Set, Operation: unix.NFT_DYNSET_OP_UPDATE, Timeout: u.Timeout},
	}
}

func (m MatchSaddrInSet) exprs(*exprBuilder) []exprAny {
	return []exprAny{
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Lookup{SourceRegister: reg1, SetName: m.Set},
	}
}

func (v Verdict) exprs(*exprBuilder) []exprAny {
	k := map[VerdictKind]expr.VerdictKind{
		VerdictAccept: expr.VerdictAccept, VerdictDrop: expr.VerdictDrop, VerdictReturn: expr.VerdictReturn,
		VerdictJump: expr.VerdictJump, VerdictGoto: expr.VerdictGoto,
	}[v.Kind]
	return []exprAny{&expr.Verdict{Kind: k, Chain: v.Chain}}
}

func (v Verdict) nft() *expr.Verdict {
	return v.exprs(nil)[0].(*expr.Verdict)
}

// elementKey encodes an element's key as the kernel stores it: each
// concatenated field padded to 4 bytes.
func elementKey(k SetKey, e Element) []byte {
	if k == KeyIndex {
		return binaryutil.NativeEndian.PutUint32(uint32(e.Port))
	}
	var b []byte
	if k == KeyAddr || k == KeyAddrProtoPort {
		a := e.Addr.As4()
		b = append(b, a[:]...)
	}
	if k != KeyAddr {
		b = append(b, e.Proto, 0, 0, 0)
		b = binary.BigEndian.AppendUint16(b, e.Port)
		b = append(b, 0, 0)
	}
	return b
}

func keyType(k SetKey) nftables.SetDatatype {
	switch k {
	case KeyAddr:
		return nftables.TypeIPAddr
	case KeyProtoPort:
		return nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
	case KeyIndex:
		return nftables.TypeInteger
	default:
		return nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	}
}
