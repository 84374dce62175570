package nat

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/egress-router/egress-router/internal/redirect"
)

// ipsDstNAT is IPS_DST_NAT from linux/netfilter/nf_conntrack_common.h: the bit
// `ct status dnat` tests.
const ipsDstNAT = 1 << 5

// The registers rules load values into (the 16-byte registers, so an IPv6 address
// fits in one).
const (
	regMatch = unix.NFT_REG_1
	regAddr  = unix.NFT_REG_1
)

var (
	nfprotos = map[family]byte{ipv4: unix.NFPROTO_IPV4, ipv6: unix.NFPROTO_IPV6}
	l4protos = map[redirect.Proto]byte{redirect.TCP: unix.IPPROTO_TCP, redirect.UDP: unix.IPPROTO_UDP, redirect.SCTP: unix.IPPROTO_SCTP}
	natTypes = map[verdict]expr.NATType{dnat: expr.NATTypeDestNAT, snat: expr.NATTypeSourceNAT}
	verdicts = map[verdict]expr.VerdictKind{accept: expr.VerdictAccept, drop: expr.VerdictDrop}
	zeroWord = []byte{0, 0, 0, 0}
)

// ctTests are the conntrack conditions as nft tests them: a ct key, masked, compared
// with zero.
var ctTests = map[ctMatch]struct {
	key  expr.CtKey
	mask uint32
	op   expr.CmpOp
}{
	ctEstablished: {expr.CtKeySTATE, expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED, expr.CmpOpNeq},
	ctDNAT:        {expr.CtKeySTATUS, ipsDstNAT, expr.CmpOpNeq},
	ctNotDNAT:     {expr.CtKeySTATUS, ipsDstNAT, expr.CmpOpEq},
	ctNew:         {expr.CtKeySTATE, expr.CtStateBitNEW, expr.CmpOpNeq},
}

// nftExprs renders r as nftables expressions; nftRule reads them back. Each field is
// one fragment, e.g. `meta l4proto tcp` is a meta load and a compare, and `th dport
// 80` a payload load and a compare. A NAT keeps the packet's port: the DNAT rules that change it
// are elements of a map (see inRedirectMap).
func nftExprs(r rule) []expr.Any {
	var e []expr.Any
	if r.family != anyFamily {
		e = append(e, metaCmp(expr.MetaKeyNFPROTO, expr.CmpOpEq, []byte{nfprotos[r.family]})...)
	}
	if r.in != "" {
		e = append(e, metaCmp(expr.MetaKeyIIFNAME, expr.CmpOpEq, ifname(r.in))...)
	}
	if r.notIn != "" {
		e = append(e, metaCmp(expr.MetaKeyIIFNAME, expr.CmpOpNeq, ifname(r.notIn))...)
	}
	if r.out != "" {
		e = append(e, metaCmp(expr.MetaKeyOIFNAME, expr.CmpOpEq, ifname(r.out))...)
	}
	if r.proto != "" {
		e = append(e, metaCmp(expr.MetaKeyL4PROTO, expr.CmpOpEq, []byte{l4protos[r.proto]})...)
	}
	if r.dport != 0 {
		load := dportLoad(regMatch)
		e = append(e, &load, &expr.Cmp{Op: expr.CmpOpEq, Register: regMatch, Data: binaryutil.BigEndian.PutUint16(r.dport)})
	}
	if test, ok := ctTests[r.ct]; ok {
		e = append(e,
			&expr.Ct{Register: regMatch, Key: test.key},
			&expr.Bitwise{SourceRegister: regMatch, DestRegister: regMatch, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(test.mask), Xor: zeroWord},
			&expr.Cmp{Op: test.op, Register: regMatch, Data: zeroWord},
		)
	}
	switch r.action {
	case accept, drop:
		e = append(e, &expr.Verdict{Kind: verdicts[r.action]})
	case dnat, snat:
		e = append(e,
			&expr.Immediate{Register: regAddr, Data: r.to.Addr().AsSlice()},
			&expr.NAT{Type: natTypes[r.action], Family: uint32(nfprotos[familyOf(r.to.Addr())]), RegAddrMin: regAddr})
	}
	return e
}

// dportLoad is `th dport` into register reg: the destination port sits at offset 2
// in TCP, UDP and SCTP alike.
func dportLoad(reg uint32) expr.Payload {
	return expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
}

func metaCmp(key expr.MetaKey, op expr.CmpOp, data []byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: key, Register: regMatch}, &expr.Cmp{Op: op, Register: regMatch, Data: data}}
}

// ifname is an exact interface name match: the name and a NUL. (nft pads it with
// NULs to IFNAMSIZ; readIfname reads both.)
func ifname(name string) []byte { return append([]byte(name), 0) }

// readIfname reads an exact interface name match: a name followed by NULs only.
func readIfname(data []byte) (string, bool) {
	name, pad, named := strings.Cut(string(data), "\x00")
	return name, named && strings.Trim(pad, "\x00") == ""
}

// nftRule reads expressions back into a rule. Anything that is not a fragment
// nftExprs writes (or a rule without a verdict) comes back as an unknown rule.
func nftRule(c chain, handle uint64, exprs []expr.Any) rule {
	r := rule{chain: c}
	if r.readFragments(exprs) != len(exprs) || r.action == 0 {
		return unknownNFTRule(c, handle, exprs)
	}
	return r
}

// readFragments reads fragments from the start of e until one is not ours or one
// set the action, which ends a rule, and returns how many expressions it read.
func (r *rule) readFragments(e []expr.Any) int {
	read := 0
	for read < len(e) && r.action == 0 {
		n := r.readFragment(e[read:])
		if n == 0 {
			break
		}
		read += n
	}
	return read
}

// readFragment sets the field the fragment at the start of e matches and returns how
// many expressions it used, or 0 when it is not one of ours.
func (r *rule) readFragment(e []expr.Any) int {
	switch first := e[0].(type) {
	case *expr.Meta:
		cmp, ok := cmpOn(e, 1, first.Register)
		if !ok || first.SourceRegister {
			return 0
		}
		return readMeta(r, first.Key, cmp)
	case *expr.Payload:
		cmp, ok := cmpOn(e, 1, first.DestRegister)
		if !ok || *first != dportLoad(regMatch) || cmp.Op != expr.CmpOpEq || len(cmp.Data) != 2 {
			return 0
		}
		return consumed(setOnce(&r.dport, binaryutil.BigEndian.Uint16(cmp.Data)), 2)
	case *expr.Ct:
		return readCt(r, e, first)
	case *expr.Verdict:
		for v, kind := range verdicts {
			if first.Kind == kind {
				return consumed(setOnce(&r.action, v), 1)
			}
		}
	case *expr.Immediate:
		return readNAT(r, e)
	}
	return 0
}

func readMeta(r *rule, key expr.MetaKey, cmp *expr.Cmp) int {
	name, named := readIfname(cmp.Data)
	switch {
	case key == expr.MetaKeyNFPROTO && cmp.Op == expr.CmpOpEq && len(cmp.Data) == 1:
		for f, p := range nfprotos {
			if p == cmp.Data[0] {
				return consumed(setOnce(&r.family, f), 2)
			}
		}
	case key == expr.MetaKeyL4PROTO && cmp.Op == expr.CmpOpEq && len(cmp.Data) == 1:
		for p, n := range l4protos {
			if n == cmp.Data[0] {
				return consumed(setOnce(&r.proto, p), 2)
			}
		}
	case key == expr.MetaKeyIIFNAME && cmp.Op == expr.CmpOpEq && named:
		return consumed(setOnce(&r.in, name), 2)
	case key == expr.MetaKeyIIFNAME && cmp.Op == expr.CmpOpNeq && named:
		return consumed(setOnce(&r.notIn, name), 2)
	case key == expr.MetaKeyOIFNAME && cmp.Op == expr.CmpOpEq && named:
		return consumed(setOnce(&r.out, name), 2)
	}
	return 0
}

// readCt reads a ctTests condition: a ct load, a mask and a compare with zero.
func readCt(r *rule, e []expr.Any, ct *expr.Ct) int {
	if len(e) < 3 || ct.SourceRegister {
		return 0
	}
	mask, ok := e[1].(*expr.Bitwise)
	cmp, okCmp := cmpOn(e, 2, ct.Register)
	if !ok || !okCmp || mask.SourceRegister != ct.Register || mask.DestRegister != ct.Register ||
		!bytes.Equal(mask.Xor, zeroWord) || !bytes.Equal(cmp.Data, zeroWord) || len(mask.Mask) != 4 {
		return 0
	}
	for m, test := range ctTests {
		if ct.Key == test.key && binaryutil.NativeEndian.Uint32(mask.Mask) == test.mask && cmp.Op == test.op {
			return consumed(setOnce(&r.ct, m), 3)
		}
	}
	return 0
}

// readNAT reads an address load and the nat expression that uses it.
func readNAT(r *rule, e []expr.Any) int {
	load := e[0].(*expr.Immediate)
	addr, ok := netip.AddrFromSlice(load.Data)
	if !ok || len(e) < 2 {
		return 0
	}
	nat, ok := e[1].(*expr.NAT)
	if !ok {
		return 0
	}
	for v, t := range natTypes {
		if natUses(nat, t, familyOf(addr), load.Register, 0) && setOnce(&r.action, v) {
			r.to = netip.AddrPortFrom(addr, 0)
			return 2
		}
	}
	return 0
}

// natUses reports whether nat is a plain NAT of type t to an address of family f
// in register addr and a port in register port (0: the packet's port is kept). The
// kernel reports an unset range maximum as equal to the minimum.
func natUses(nat *expr.NAT, t expr.NATType, f family, addr, port uint32) bool {
	return nat.Type == t && nat.Family == uint32(nfprotos[f]) &&
		nat.RegAddrMin == addr && slices.Contains([]uint32{0, addr}, nat.RegAddrMax) &&
		nat.RegProtoMin == port && slices.Contains([]uint32{0, port}, nat.RegProtoMax) &&
		!nat.Random && !nat.FullyRandom && !nat.Persistent && !nat.Prefix
}

// cmpOn returns e[i] if it is a compare on register reg.
func cmpOn(e []expr.Any, i int, reg uint32) (*expr.Cmp, bool) {
	if len(e) <= i {
		return nil, false
	}
	cmp, ok := e[i].(*expr.Cmp)
	return cmp, ok && cmp.Register == reg
}

// consumed is n when a fragment of n expressions was read, else 0.
func consumed(ok bool, n int) int {
	if !ok {
		return 0
	}
	return n
}

func unknownNFTRule(c chain, handle uint64, exprs []expr.Any) rule {
	names := make([]string, len(exprs))
	for i, e := range exprs {
		names[i] = strings.ToLower(strings.TrimPrefix(fmt.Sprintf("%T", e), "*expr."))
	}
	return rule{chain: c, unknown: fmt.Sprintf("handle %d (%s)", handle, strings.Join(names, " "))}
}
